//! Frames: the 24-byte header around a payload, its checksum, and a frame's length.

use super::*;

/// Builds one frame, with a checksum, from encoded records (each produced by
/// [`Record::encode`]).
pub fn frame(payload: &[u8], count: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    begin_frame(&mut f);
    f.extend_from_slice(payload);
    finish_frame(&mut f, count, true);
    f
}

/// Starts a frame in `buf` (which should be empty): room for the header, filled in by
/// [`finish_frame`] once the records are appended. The payload starts at [`HEADER_LEN`].
pub fn begin_frame(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0; HEADER_LEN]);
}

/// Writes the header of a frame begun with [`begin_frame`] holding `count` records, with the
/// payload's checksum when `checksum` (the same bytes as [`frame`] of its payload then).
pub fn finish_frame(buf: &mut [u8], count: u32, checksum: bool) {
    let len = buf.len().saturating_sub(HEADER_LEN);
    let payload = &buf[HEADER_LEN.min(buf.len())..];
    let (flags, crc) = if checksum {
        (FLAG_CHECKSUM, crc32(payload))
    } else {
        (0, 0)
    };
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..12].copy_from_slice(&count.to_le_bytes());
    h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    if let Some(dst) = buf.get_mut(..HEADER_LEN) {
        dst.copy_from_slice(&h);
    }
}

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

/// Length of the frame starting at `buf` once its header is complete (to skip or bound reads).
pub fn frame_len(buf: &[u8]) -> Result<usize, BatchError> {
    let hdr = buf.get(..HEADER_LEN).ok_or(BatchError::Incomplete)?;
    if hdr[..4] != MAGIC {
        return Err(BatchError::BadMagic);
    }
    let len = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BatchError::TooLarge(len));
    }
    Ok(HEADER_LEN + len)
}

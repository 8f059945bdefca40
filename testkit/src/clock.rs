//! The tests' clock: every timestamp a test stores, queries or scores is derived from the current
//! time, never written as a literal date. The store keeps rows for a TTL (7 days for
//! `http_logs`) and drops older rows at insert, so a fixed date passes on the day it is written
//! and fails from a week later. Expected strings are built from the same value with [`utc`].
//!
//! CI runs the store, schema and scoring tests a second time with the clock moved ahead
//! (`scripts/test.sh`, libfaketime): a literal date that slips back in fails there at once.
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the epoch, now, rounded down to the whole second (so that a test adding
/// its own sub-second part knows every digit of the stored value).
pub fn now_second_us() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    secs as i64 * 1_000_000
}

/// `YYYY-MM-DD hh:mm:ss.ffffff` in UTC: how ClickHouse prints a `DateTime64(6, 'UTC')`.
pub fn utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (days in 400-year eras of
/// 146,097 days, years starting in March so that the leap day ends a year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[test]
fn utc_formats_known_instants() {
    assert_eq!(utc(0), "1970-01-01 00:00:00.000000");
    assert_eq!(utc(951_782_400_000_001), "2000-02-29 00:00:00.000001");
    assert_eq!(utc(1_795_243_705_371_154), "2026-11-21 06:48:25.371154");
    assert_eq!(utc(4_107_542_399_999_999), "2100-02-28 23:59:59.999999");
    assert_eq!(utc(-1), "1969-12-31 23:59:59.999999");
}

/// Under the clock guard (`JA4_CLOCK_AHEAD_DAYS` set by `scripts/clock-guard.sh`), checks
/// that this process really runs that many days ahead: a file just written carries the
/// kernel's real time, the process's clock reads the moved one. Outside the guard it checks
/// nothing. Every test binary the guard runs calls it from a test of its own.
pub fn assert_clock_guard_in_effect() {
    let Ok(days) = std::env::var("JA4_CLOCK_AHEAD_DAYS") else {
        return;
    };
    let days: i64 = days
        .parse()
        .expect("JA4_CLOCK_AHEAD_DAYS is a number of days");
    let file = std::env::temp_dir().join(format!("ja4-clock-{}", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    let real = std::fs::metadata(&file).unwrap().modified().unwrap();
    let _ = std::fs::remove_file(&file);
    let ahead = SystemTime::now()
        .duration_since(real)
        .map_or(0, |d| d.as_secs() as i64);
    assert!(
        (ahead - days * 86_400).abs() < 3_600,
        "clock {ahead} s ahead of the kernel's, expected {days} days: is libfaketime loaded?"
    );
}

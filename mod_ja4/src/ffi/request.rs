//! [`Request`]: a `request_rec` for the length of a hook call, and [`RecordSlot`]: where a
//! request's record lives from post_read_request to log_transaction.

use std::cell::UnsafeCell;
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use apr_sys as sys;

use super::table::{self, Entry};
use super::{cbytes, module_config, set_module_config, Connection, Pool, Server};
use crate::record::ReqRecord;

/// The request a hook was called with; its strings and pool live for `'r`. Not `Clone`:
/// adding to the request's tables needs the one view mutably, so no slice of a table is held
/// across an addition.
#[repr(transparent)]
pub(crate) struct Request<'r>(&'r sys::request_rec);

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` is NULL or the live request of the current hook call, alive for `'r`, whose
    /// tables only this view changes meanwhile.
    #[inline(always)]
    pub(super) unsafe fn from_raw(raw: *mut sys::request_rec) -> Option<Request<'r>> {
        // SAFETY: the caller's guarantee.
        unsafe { raw.as_ref() }.map(Request)
    }

    #[inline(always)]
    pub(crate) fn proto_num(&self) -> i32 {
        self.0.proto_num
    }

    #[inline(always)]
    fn str(&self, p: *const c_char) -> &'r [u8] {
        // SAFETY: the request's string fields are NULL or C strings in its pool.
        unsafe { cbytes(p) }
    }

    /// The host the request is for (`r->hostname`).
    #[inline(always)]
    pub(crate) fn hostname(&self) -> &'r [u8] {
        self.str(self.0.hostname)
    }

    /// The request line as received.
    #[inline(always)]
    pub(crate) fn the_request(&self) -> &'r [u8] {
        self.str(self.0.the_request)
    }

    /// The query string.
    pub(crate) fn args(&self) -> &'r [u8] {
        self.str(self.0.args)
    }

    /// Whether the path (`r->uri`) is `path`, compared without measuring the path first.
    #[inline(always)]
    pub(crate) fn uri_is(&self, path: &CStr) -> bool {
        let u = self.0.uri;
        if u.is_null() {
            return false;
        }
        for (i, &want) in path.to_bytes_with_nul().iter().enumerate() {
            // SAFETY: a C string has at least its NUL; the byte after a non-NUL is in bounds.
            let got = unsafe { *u.add(i) } as u8;
            if got != want {
                return false;
            }
            if got == 0 {
                break;
            }
        }
        true
    }

    /// The path and query as the client sent them (`r->unparsed_uri`).
    pub(crate) fn unparsed_uri(&self) -> &'r [u8] {
        self.str(self.0.unparsed_uri)
    }

    /// Whether the handler is `name`, compared without measuring the handler first (this
    /// runs for every request).
    #[inline(always)]
    pub(crate) fn handler_is(&self, name: &CStr) -> bool {
        let h = self.0.handler;
        if h.is_null() {
            return false;
        }
        for (i, &want) in name.to_bytes_with_nul().iter().enumerate() {
            // SAFETY: a C string has at least its NUL; the byte after a non-NUL is in bounds.
            let got = unsafe { *h.add(i) } as u8;
            if got != want {
                return false;
            }
            if got == 0 {
                break;
            }
        }
        true
    }

    /// The first two bytes of the method and how many there are (fewer for a shorter
    /// method): all JA4H takes from it, read without measuring the method.
    #[inline(always)]
    pub(crate) fn method_head(&self) -> ([u8; 2], usize) {
        let m = self.0.method;
        let mut out = ([0u8; 2], 0);
        if !m.is_null() {
            for i in 0..2 {
                // SAFETY: a C string has at least its NUL; the second byte is read only after
                // a first that is not the NUL.
                let b = unsafe { *m.add(i) } as u8;
                if b == 0 {
                    break;
                }
                out.0[i] = b;
                out.1 = i + 1;
            }
        }
        out
    }

    /// The request headers, in the order received (duplicates kept).
    #[inline(always)]
    pub(crate) fn headers(&self) -> &[Entry<'r>] {
        // SAFETY: the request's header table; `&self` keeps additions (`&mut self`) away while
        // the slice is borrowed.
        unsafe { table::entries(self.0.headers_in) }
    }

    /// Adds an environment variable (pointers kept: `val` outlives the request).
    #[inline(always)]
    pub(crate) fn add_env(&mut self, key: &'static CStr, val: &'r CStr) {
        // SAFETY: the request's environment table; both strings outlive it.
        unsafe { table::add(self.0.subprocess_env, key, val) }
    }

    /// Adds a request header (pointers kept: `val` outlives the request).
    #[inline(always)]
    pub(crate) fn add_header(&mut self, key: &'static CStr, val: &'r CStr) {
        // SAFETY: the request's header table; both strings outlive it.
        unsafe { table::add(self.0.headers_in, key, val) }
    }

    /// Adds a response header kept on error responses too (`err_headers_out`; pointers
    /// kept: `val` outlives the request).
    pub(crate) fn add_err_header(&mut self, key: &'static CStr, val: &'r CStr) {
        // SAFETY: the request's error header table; both strings outlive it.
        unsafe { table::add(self.0.err_headers_out, key, val) }
    }

    /// Adds a response header (`headers_out`: kept for a redirect's `Location` on an error
    /// response; pointers kept: `val` outlives the request).
    pub(crate) fn add_header_out(&mut self, key: &'static CStr, val: &'r CStr) {
        // SAFETY: the request's response header table; both strings outlive it.
        unsafe { table::add(self.0.headers_out, key, val) }
    }

    /// Makes `body` (HTML) the text httpd sends when this request ends with `status`
    /// (`ap_custom_response`: for this request only, over any `ErrorDocument`).
    pub(crate) fn custom_response(&mut self, status: i32, body: &'r CStr) {
        // SAFETY: a live request; httpd keeps the pointer (or a copy) in the request's pool,
        // which `body` outlives. A body that starts with '/' or looks like a URL would be
        // taken as an address, so the caller's text starts with '<'.
        unsafe { sys::ap_custom_response(self.0 as *const _ as *mut _, status, body.as_ptr()) }
    }

    /// Removes every request header `key`.
    pub(crate) fn unset_header(&mut self, key: &CStr) {
        // SAFETY: the request's header table.
        unsafe { table::unset(self.0.headers_in, key) }
    }

    /// The virtual host serving the request.
    #[inline(always)]
    pub(crate) fn server(&self) -> Option<Server<'r>> {
        // SAFETY: r->server lives as long as the configuration, beyond the request.
        unsafe { Server::from_raw(self.0.server) }
    }

    /// The connection the request came on.
    #[inline(always)]
    pub(crate) fn connection(&self) -> Connection<'r> {
        // SAFETY: a request's connection outlives it.
        unsafe { Connection::from_raw(self.0.connection) }.expect("a request's connection")
    }

    /// The request pool.
    #[inline(always)]
    pub(crate) fn pool(&self) -> Pool<'r> {
        // SAFETY: the request pool lives as long as the request.
        unsafe { Pool::from_raw(self.0.pool) }.expect("a request's pool")
    }

    /// mod_ssl's value of `name` for this request (empty without mod_ssl or TLS).
    pub(crate) fn ssl_var(&self, name: &CStr) -> &'r [u8] {
        // SAFETY: the glue returns NULL when mod_ssl is absent, else a string in the request
        // pool (or static).
        unsafe {
            cbytes(sys::ja4_ssl_var(
                self.0.pool,
                self.0.server,
                self.0.connection,
                self.0 as *const _ as *mut _,
                name.as_ptr(),
            ))
        }
    }

    /// The response status.
    #[inline(always)]
    pub(crate) fn status(&self) -> i32 {
        self.0.status
    }

    /// Body bytes read.
    #[inline(always)]
    pub(crate) fn read_length(&self) -> i64 {
        self.0.read_length
    }

    /// Body bytes sent.
    #[inline(always)]
    pub(crate) fn bytes_sent(&self) -> i64 {
        self.0.bytes_sent
    }

    /// When the request started (APR microseconds).
    #[inline(always)]
    pub(crate) fn request_time(&self) -> i64 {
        self.0.request_time
    }

    /// Whether only the head of the response goes out (HEAD).
    pub(crate) fn header_only(&self) -> bool {
        self.0.header_only != 0
    }

    /// Sets the response's content type.
    pub(crate) fn set_content_type(&mut self, t: &'static CStr) {
        // SAFETY: a live request; the type is static.
        unsafe { sys::ap_set_content_type(self.0 as *const _ as *mut _, t.as_ptr()) }
    }

    /// Writes `body` to the response.
    pub(crate) fn write(&mut self, body: &[u8]) {
        for chunk in body.chunks(i32::MAX as usize) {
            // SAFETY: a live request; ap_rwrite copies the bytes.
            unsafe {
                sys::ap_rwrite(
                    chunk.as_ptr().cast(),
                    chunk.len() as i32,
                    self.0 as *const _ as *mut _,
                )
            };
        }
    }

    /// The first request of this one's internal-redirect chain (which holds the record).
    fn first(&self) -> &'r sys::request_rec {
        let mut r = self.0;
        // SAFETY: prev links live requests of the same chain.
        while let Some(p) = unsafe { r.prev.as_ref() } {
            r = p;
        }
        r
    }

    /// Makes this request's record, kept until it is logged: in `slot` if it is free
    /// (claimed until [`Request::release_record`]), else in the request pool. `fill` writes
    /// it in place (a record is a few hundred bytes: it is not moved).
    #[inline]
    pub(crate) fn keep_record(
        &self,
        slot: Option<&'r RecordSlot>,
        fill: impl FnOnce(&mut ReqRecord<'r>),
    ) -> &'r ReqRecord<'r> {
        let p: *mut ReqRecord<'r> = match slot.and_then(RecordSlot::claim) {
            Some(mem) => {
                let mem = mem.cast::<ReqRecord<'r>>();
                // SAFETY: the claimed slot is ours alone until released, sized and aligned
                // for a ReqRecord (whose lifetime parameter does not change its layout).
                unsafe { mem.write(ReqRecord::default()) };
                mem
            }
            None => self.pool().alloc(ReqRecord::default()),
        };
        // SAFETY: `p` is initialised and ours (slot or fresh pool memory); our slot of the
        // live request's vector points to it until log_transaction, the last hook that reads
        // it, and nothing reads it while `fill` writes it.
        unsafe {
            fill(&mut *p);
            set_module_config(self.0.request_config, p.cast());
            &*p
        }
    }

    /// The record post_read_request kept for this request (or for the first request of its
    /// internal-redirect chain).
    #[inline]
    pub(crate) fn record(&self) -> Option<&ReqRecord<'r>> {
        // SAFETY: our slot of a live request holds NULL or the record keep_record put there,
        // alive until release_record (which takes the view, ending this borrow).
        unsafe { (module_config(self.first().request_config) as *const ReqRecord<'r>).as_ref() }
    }

    /// The record, to change (the access checker's part of it). The borrow of the view
    /// keeps [`Request::record`]'s out of the way meanwhile.
    #[inline]
    pub(crate) fn record_mut(&mut self) -> Option<&mut ReqRecord<'r>> {
        // SAFETY: as in record(); `&mut self` means no other reference to the record made
        // through this view is alive, and no earlier hook's is (they have returned).
        unsafe { (module_config(self.first().request_config) as *mut ReqRecord<'r>).as_mut() }
    }

    /// Our configuration of the request's `<Directory>`/`<Location>` sections, merged.
    pub(crate) fn dir_config<T>(&self) -> Option<&'r T> {
        // SAFETY: our slot of the request's per-directory vector holds NULL or the T our
        // create/merge_dir_config made in the configuration pool, which outlives requests.
        unsafe { (module_config(self.0.per_dir_config) as *const T).as_ref() }
    }

    /// Gives back the record's slot (if it is in `slot`); the request has no record after.
    #[inline]
    pub(crate) fn release_record(self, slot: Option<&RecordSlot>) {
        let first = self.first();
        // SAFETY: our slot of a live request.
        let p = unsafe { module_config(first.request_config) } as *const ReqRecord<'r>;
        if p.is_null() {
            return;
        }
        if let Some(slot) = slot {
            slot.release(p.cast());
        }
        // A second log_transaction for this request must not read the slot again.
        // SAFETY: as above.
        unsafe { set_module_config(first.request_config, std::ptr::null_mut()) };
    }
}

/// Room for one request record in its connection's state, claimed by a request at
/// post_read_request and released at its log_transaction. A request that finds it taken (an
/// HTTP/2 stream while another is under way, a pipelined request whose predecessor is not
/// logged yet) keeps its record in its pool instead.
pub(crate) struct RecordSlot {
    busy: AtomicBool,
    rec: UnsafeCell<MaybeUninit<ReqRecord<'static>>>,
}

impl Default for RecordSlot {
    fn default() -> Self {
        RecordSlot {
            busy: AtomicBool::new(false),
            rec: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl std::fmt::Debug for RecordSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSlot")
            .field("busy", &self.busy)
            .finish()
    }
}

// SAFETY: the record is only touched by the one request that claimed the slot (an acquiring
// compare-exchange) until it releases it (a releasing store).
unsafe impl Sync for RecordSlot {}

impl RecordSlot {
    /// The slot's memory, for the caller alone until [`RecordSlot::release`]; None when taken.
    #[inline]
    fn claim(&self) -> Option<*mut ReqRecord<'static>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| self.rec.get().cast())
    }

    /// Gives the slot back if `rec` is its memory (a record elsewhere is left alone).
    #[inline]
    fn release(&self, rec: *const ReqRecord<'static>) {
        if std::ptr::eq(rec, self.rec.get().cast::<ReqRecord<'static>>()) {
            self.busy.store(false, Ordering::Release);
        }
    }
}

//! The embedded ClickHouse engine: `libchdb.so` (chDB C API), loaded at run time from a
//! configured path, so the sidecar builds and runs without it when a ClickHouse server is used.
//!
//! Owns: loading the library, one connection (chDB allows one per process) to a data directory,
//! and running SQL with a named output format; errors come back as [`ChdbError`] with the
//! engine's message.
//! Never: exposes raw pointers; every call into the library is in this file, each with its
//! safety argument.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
/// A failure of the embedded engine.
pub enum ChdbError {
    #[error("cannot load the embedded ClickHouse engine from {path}: {error}")]
    /// `libchdb.so` could not be loaded.
    Load {
        /// The library asked for.
        path: PathBuf,
        /// The loader's reason.
        error: libloading::Error,
    },
    #[error("cannot open the embedded ClickHouse store at {0}")]
    /// The engine refused to open its data directory.
    Connect(PathBuf),
    #[error("ClickHouse: {0}")]
    /// A query failed (the engine's message).
    Query(String),
    #[error("invalid argument: {0}")]
    /// A query or path that cannot be passed to C (an interior NUL).
    Argument(&'static str),
    #[error("cannot load the embedded ClickHouse engine from {path}: {loaded} is already loaded in this process")]
    /// One process can hold one chDB library: another one is loaded already.
    AlreadyLoaded {
        /// The library asked for.
        path: PathBuf,
        /// The one loaded.
        loaded: PathBuf,
    },
}

/// Mirrors `struct chdb_connection_ { void *internal_data; }`; the API passes pointers to it.
#[repr(C)]
struct ConnectionData {
    _internal: *mut c_void,
}
type Connection = *mut ConnectionData;

/// Mirrors `struct chdb_result_ { void *internal_data; }`.
#[repr(C)]
struct ResultData {
    _internal: *mut c_void,
}

type ConnectFn = unsafe extern "C" fn(c_int, *mut *mut c_char) -> *mut Connection;
type CloseFn = unsafe extern "C" fn(*mut Connection);
type QueryFn =
    unsafe extern "C" fn(Connection, *const c_char, usize, *const c_char, usize) -> *mut ResultData;
type QueryParamsFn = unsafe extern "C" fn(
    Connection,
    *const c_char,
    *const c_char,
    *const *const c_char,
    *const *const c_char,
    usize,
) -> *mut ResultData;
type DestroyFn = unsafe extern "C" fn(*mut ResultData);
type BufferFn = unsafe extern "C" fn(*mut ResultData) -> *mut c_char;
type LengthFn = unsafe extern "C" fn(*mut ResultData) -> usize;
type ErrorFn = unsafe extern "C" fn(*mut ResultData) -> *const c_char;

struct Api {
    connect: ConnectFn,
    close: CloseFn,
    query: QueryFn,
    /// `chdb_query_with_params` (absent in old engines: parameterised queries then fail).
    query_params: Option<QueryParamsFn>,
    destroy: DestroyFn,
    buffer: BufferFn,
    length: LengthFn,
    error: ErrorFn,
}

/// The loaded library. It is never unloaded: the engine keeps thread-local state whose
/// destructors live in the library, so unloading it would crash exiting threads.
struct Loaded {
    path: PathBuf,
    api: Api,
}

static LOADED: std::sync::OnceLock<Loaded> = std::sync::OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

fn load(lib: &Path) -> Result<&'static Api, ChdbError> {
    let _guard = LOADING
        .lock()
        .map_err(|_| ChdbError::Argument("loader lock poisoned"))?;
    if let Some(l) = LOADED.get() {
        return if l.path == lib {
            Ok(&l.api)
        } else {
            Err(ChdbError::AlreadyLoaded {
                path: lib.to_owned(),
                loaded: l.path.clone(),
            })
        };
    }
    let err = |error| ChdbError::Load {
        path: lib.to_owned(),
        error,
    };
    // SAFETY: loading runs the library's initialisers; libchdb.so is the pinned engine.
    let library = unsafe { libloading::Library::new(lib) }.map_err(err)?;
    // SAFETY: each symbol is looked up with the exact signature of chdb.h (chDB 3.x API); the
    // library is leaked below, so the function pointers stay valid for the process.
    let api = unsafe {
        Api {
            connect: *library.get(b"chdb_connect\0").map_err(err)?,
            close: *library.get(b"chdb_close_conn\0").map_err(err)?,
            query: *library.get(b"chdb_query_n\0").map_err(err)?,
            query_params: library
                .get::<QueryParamsFn>(b"chdb_query_with_params\0")
                .ok()
                .map(|f| *f),
            destroy: *library.get(b"chdb_destroy_query_result\0").map_err(err)?,
            buffer: *library.get(b"chdb_result_buffer\0").map_err(err)?,
            length: *library.get(b"chdb_result_length\0").map_err(err)?,
            error: *library.get(b"chdb_result_error\0").map_err(err)?,
        }
    };
    std::mem::forget(library);
    Ok(&LOADED
        .get_or_init(|| Loaded {
            path: lib.to_owned(),
            api,
        })
        .api)
}

/// An open embedded store.
pub struct Chdb {
    api: &'static Api,
    conn: Mutex<*mut Connection>,
    /// Inserts waiting for the connection: reads step aside for them (see [`Chdb::turn`]).
    inserts_waiting: std::sync::atomic::AtomicUsize,
    data_dir: PathBuf,
}

/// Who asks for the one connection: inserts go before reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Insert,
    Read,
}

/// How long a read steps aside for inserts at most before it takes its turn anyway.
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

// SAFETY: chDB documents its connection API as thread-safe (queries run on the engine's own
// thread); we additionally serialise calls through the mutex.
unsafe impl Send for Chdb {}
// SAFETY: as above; all access to the connection goes through the mutex.
unsafe impl Sync for Chdb {}

impl Chdb {
    /// Loads `lib` and opens (or creates) the store in `data_dir`.
    pub fn open(lib: &Path, data_dir: &Path) -> Result<Chdb, ChdbError> {
        std::fs::create_dir_all(data_dir).map_err(|_| ChdbError::Connect(data_dir.to_owned()))?;
        let api = load(lib)?;
        let arg0 = CString::new("ja4-sidecar").map_err(|_| ChdbError::Argument("argv"))?;
        let path = CString::new(format!("--path={}", data_dir.display()))
            .map_err(|_| ChdbError::Argument("data path contains NUL"))?;
        let mut argv = [arg0.as_ptr() as *mut c_char, path.as_ptr() as *mut c_char];
        // SAFETY: argv holds two valid C strings that outlive the call.
        let conn = unsafe { (api.connect)(argv.len() as c_int, argv.as_mut_ptr()) };
        // SAFETY: a non-null result points to a connection handle owned by the library.
        if conn.is_null() || unsafe { (*conn).is_null() } {
            return Err(ChdbError::Connect(data_dir.to_owned()));
        }
        Ok(Chdb {
            api,
            conn: Mutex::new(conn),
            inserts_waiting: std::sync::atomic::AtomicUsize::new(0),
            data_dir: data_dir.to_owned(),
        })
    }

    /// The data directory the engine was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The connection, for `turn`. chDB has one connection per process, shared by ingest
    /// inserts, scoring and dashboard reads: an insert waits only for the statement running
    /// now, while reads that find inserts waiting let them go first (for at most
    /// [`READ_PATIENCE`]), so an analyst's queries cannot hold ingest back.
    fn turn(&self, turn: Turn) -> Result<std::sync::MutexGuard<'_, *mut Connection>, ChdbError> {
        use std::sync::atomic::Ordering;
        let poisoned = |_| ChdbError::Query("connection lock poisoned".into());
        if turn == Turn::Insert {
            self.inserts_waiting.fetch_add(1, Ordering::SeqCst);
            let g = self.conn.lock();
            self.inserts_waiting.fetch_sub(1, Ordering::SeqCst);
            return g.map_err(poisoned);
        }
        let patient_until = std::time::Instant::now() + READ_PATIENCE;
        loop {
            while self.inserts_waiting.load(Ordering::SeqCst) > 0
                && std::time::Instant::now() < patient_until
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let g = self.conn.lock().map_err(poisoned)?;
            if self.inserts_waiting.load(Ordering::SeqCst) == 0
                || std::time::Instant::now() >= patient_until
            {
                return Ok(g);
            }
            // An insert queued while this read waited for the lock: it goes first.
            drop(g);
        }
    }

    /// Runs `sql`, returning the output in `format` (e.g. `TSV`, `JSONEachRow`, `RowBinary`).
    pub fn query(&self, sql: &str, format: &str) -> Result<Vec<u8>, ChdbError> {
        self.run(sql, format, Turn::Read)
    }

    /// Runs an insert (it goes before waiting reads).
    pub fn insert(&self, sql: &str) -> Result<(), ChdbError> {
        self.run(sql, "TSV", Turn::Insert).map(|_| ())
    }

    fn run(&self, sql: &str, format: &str, turn: Turn) -> Result<Vec<u8>, ChdbError> {
        let conn = self.turn(turn)?;
        // SAFETY: *conn is the live connection handle; query and format are passed with their
        // lengths (binary safe, no NUL needed).
        let res = unsafe {
            (self.api.query)(
                **conn,
                sql.as_ptr() as *const c_char,
                sql.len(),
                format.as_ptr() as *const c_char,
                format.len(),
            )
        };
        self.take(res)
    }

    /// Runs `sql` with its `{name:Type}` placeholders bound by the engine to `params`
    /// (name, value as text: see [`escape_param`]). Values never become SQL text.
    pub fn query_params(
        &self,
        sql: &str,
        format: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, ChdbError> {
        let f = self.api.query_params.ok_or(ChdbError::Argument(
            "this engine has no parameterised queries (chdb_query_with_params)",
        ))?;
        let c = |s: &str| {
            CString::new(s).map_err(|_| ChdbError::Argument("NUL in a query or parameter"))
        };
        let (sql, format) = (c(sql)?, c(format)?);
        let names = params
            .iter()
            .map(|(n, _)| c(n))
            .collect::<Result<Vec<_>, _>>()?;
        let values = params
            .iter()
            .map(|(_, v)| c(&escape_param(v)))
            .collect::<Result<Vec<_>, _>>()?;
        let name_ptrs: Vec<*const c_char> = names.iter().map(|s| s.as_ptr()).collect();
        let value_ptrs: Vec<*const c_char> = values.iter().map(|s| s.as_ptr()).collect();
        let conn = self.turn(Turn::Read)?;
        // SAFETY: *conn is the live connection handle; every pointer is a NUL-terminated
        // string owned above that outlives the call, and both arrays hold params.len() entries.
        let res = unsafe {
            f(
                **conn,
                sql.as_ptr(),
                format.as_ptr(),
                name_ptrs.as_ptr(),
                value_ptrs.as_ptr(),
                params.len(),
            )
        };
        self.take(res)
    }

    /// Copies a result's data or error out and destroys it.
    fn take(&self, res: *mut ResultData) -> Result<Vec<u8>, ChdbError> {
        if res.is_null() {
            return Err(ChdbError::Query("the engine returned no result".into()));
        }
        // SAFETY: `res` is a live result until destroyed below; buffer/length describe its data.
        let out = unsafe {
            let err = (self.api.error)(res);
            if err.is_null() {
                let buf = (self.api.buffer)(res);
                let len = (self.api.length)(res);
                Ok(if buf.is_null() || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(buf as *const u8, len).to_vec()
                })
            } else {
                Err(ChdbError::Query(
                    CStr::from_ptr(err).to_string_lossy().trim().to_owned(),
                ))
            }
        };
        // SAFETY: destroys the result exactly once.
        unsafe { (self.api.destroy)(res) };
        out
    }

    /// Runs statements that return nothing (DDL, INSERT … SELECT).
    pub fn execute(&self, sql: &str) -> Result<(), ChdbError> {
        self.query(sql, "TSV").map(|_| ())
    }
}

impl Drop for Chdb {
    fn drop(&mut self) {
        if let Ok(conn) = self.conn.lock() {
            // SAFETY: closes the connection opened in `open`, once.
            unsafe { (self.api.close)(*conn) };
        }
    }
}

/// A query parameter's value in the engine's escaped-text form (how ClickHouse reads `param_`
/// values, on the server and in chDB alike): backslash, tab, newline and friends escaped, so
/// the value arrives byte for byte. This is a value encoding, not SQL quoting: the value is
/// bound after the statement is parsed.
pub fn escape_param(v: &str) -> std::borrow::Cow<'_, str> {
    if !v
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0 | 8 | 12))
    {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut o = String::with_capacity(v.len() + 8);
    for ch in v.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\0' => o.push_str("\\0"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c => o.push(c),
        }
    }
    std::borrow::Cow::Owned(o)
}

/// The library path: `JA4_CHDB_LIB`, else the one `scripts/fetch-chdb.sh` puts in the workspace.
pub fn default_library() -> PathBuf {
    std::env::var_os("JA4_CHDB_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/chdb/package/libchdb.so")
        })
}

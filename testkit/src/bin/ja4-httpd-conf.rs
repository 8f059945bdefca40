//! `ja4-httpd-conf ROOT HTTPS HTTP MODE [MPM]`: the bench scripts' httpd configuration
//! (`bench/httpd-conf.sh`), written to `ROOT/httpd.conf` by the test kit's renderer.
//! MODE: `base` (no mod_ja4), `module` (exporting to `ROOT/ingest.sock`, the production
//! shape) or `module-json` (exporting to `ROOT/ja4.jsonl`); the module is `$MODULE`. The
//! server loads Debian's default module set, as a real site does. `$JA4_EXTRA`: more
//! directives for the main server (e.g. `JA4Mitigation …` for bench/mitigation.sh).

use std::path::PathBuf;
use std::process::ExitCode;

use ja4_testkit::httpd::{Conf, TlsVhost, DEBIAN_DEFAULT_MODULES};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, https, http, mode, rest @ ..] = args.as_slice() else {
        eprintln!("usage: ja4-httpd-conf ROOT HTTPS HTTP base|module|module-json [MPM]");
        return ExitCode::from(2);
    };
    let root = PathBuf::from(root);
    let mut c = Conf::new(&root)
        .with_modules(&["mime", "ssl"])
        .with_modules(DEBIAN_DEFAULT_MODULES);
    if let Some(mpm) = rest.first() {
        c.mpm = mpm.clone();
    }
    c.listen = vec![format!("127.0.0.1:{https}"), format!("127.0.0.1:{http}")];
    c.log_format = Some("%h %r %>s %b".into());
    c.directives = "KeepAliveTimeout 30\nMaxKeepAliveRequests 0\n".into();
    c.tls = Some(TlsVhost {
        addr: format!("127.0.0.1:{https}"),
        h2: false,
    });
    let module = std::env::var_os("MODULE").map(PathBuf::from);
    match (mode.as_str(), module) {
        ("base", _) => {}
        ("module", Some(m)) => {
            c.ja4 = Some(m);
            c.directives
                .push_str(&format!("JA4ExportSocket {}/ingest.sock\n", root.display()));
        }
        ("module-json", Some(m)) => {
            c.ja4 = Some(m);
            c.directives
                .push_str(&format!("JA4ExportFile {}/ja4.jsonl\n", root.display()));
        }
        (m, _) => {
            eprintln!("ja4-httpd-conf: mode {m}: base, or module/module-json with $MODULE set");
            return ExitCode::from(2);
        }
    }
    if let Ok(extra) = std::env::var("JA4_EXTRA") {
        c.directives.push_str(&extra);
        c.directives.push('\n');
    }
    match c.write() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ja4-httpd-conf: writing {}/httpd.conf: {e}", root.display());
            ExitCode::FAILURE
        }
    }
}

//! httpd configurations for Debian's `apache2` with the module: one renderer for the module's
//! tests, the traffic lab, the packaging test and the bench scripts (`ja4-httpd-conf`), each
//! adding only what differs.
//!
//! Owns: the ServerRoot layout (`httpd.conf`, `httpd.pid`, `error.log`, `access.log`,
//! `htdocs/`, `cert.pem`/`key.pem`), the module set's order (MPM first, mod_ja4 last), and
//! dropping to `www-data` when run as root. Never: starts httpd (callers do, as the test
//! needs: foreground, `-X` under valgrind, `-t`).

use std::path::{Path, PathBuf};

/// Where Debian keeps httpd's modules.
pub const MODULES: &str = "/usr/lib/apache2/modules";

/// Debian's default module set (what `a2enmod` enables on a fresh install), for measuring
/// against a server as sites run it.
pub const DEBIAN_DEFAULT_MODULES: &[&str] = &[
    "access_compat",
    "alias",
    "auth_basic",
    "authn_core",
    "authn_file",
    "authz_host",
    "authz_user",
    "autoindex",
    "deflate",
    "dir",
    "env",
    "filter",
    "negotiation",
    "reqtimeout",
    "setenvif",
    "status",
];

/// A TLS virtual host on `addr` (`*:443`, `127.0.0.1:443`) with the root's certificate.
#[derive(Debug, Clone)]
pub struct TlsVhost {
    /// The `<VirtualHost>` address (`*:PORT`).
    pub addr: String,
    /// `Protocols h2 http/1.1`.
    pub h2: bool,
}

/// One httpd configuration.
#[derive(Debug, Clone)]
pub struct Conf {
    /// The ServerRoot: logs, pid file, htdocs and the config go here.
    pub root: PathBuf,
    /// `ServerName`.
    pub server_name: String,
    /// `event`, `worker` or `prefork`.
    pub mpm: String,
    /// Directives sizing the MPM.
    pub mpm_tuning: String,
    /// Modules after the MPM, by Debian name (`ssl` loads `mod_ssl.so` as `ssl_module`).
    pub modules: Vec<String>,
    /// mod_ja4's file, loaded last; None: httpd without it (a baseline).
    pub ja4: Option<PathBuf>,
    /// `Listen` addresses.
    pub listen: Vec<String>,
    /// The format of `access.log` (none: no access log).
    pub log_format: Option<String>,
    /// Further directives of the main server (JA4*, `<Location>`, tuning), in order.
    pub directives: String,
    /// A TLS virtual host (mod_ssl), if any.
    pub tls: Option<TlsVhost>,
    /// `User`/`Group www-data` (httpd refuses to run children as root).
    pub www_data: bool,
}

impl Conf {
    /// A minimal server in `root`: event MPM, `authz_core`, `ServerName localhost`, children
    /// as `www-data` when this process is root.
    pub fn new(root: &Path) -> Conf {
        Conf {
            root: root.to_owned(),
            server_name: "localhost".into(),
            mpm: "event".into(),
            mpm_tuning: String::new(),
            modules: vec!["authz_core".into()],
            ja4: None,
            listen: Vec::new(),
            log_format: None,
            directives: String::new(),
            tls: None,
            www_data: crate::is_root(),
        }
    }

    /// Adds modules by Debian name.
    pub fn with_modules(mut self, names: &[&str]) -> Conf {
        self.modules.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// The configuration text.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let root = self.root.display();
        let mut s = String::new();
        let _ = writeln!(s, "ServerRoot {root}\nPidFile {root}/httpd.pid");
        let _ = writeln!(s, "ServerName {}", self.server_name);
        if self.www_data {
            s.push_str("User www-data\nGroup www-data\n");
        }
        let _ = writeln!(
            s,
            "LoadModule mpm_{0}_module {MODULES}/mod_mpm_{0}.so",
            self.mpm
        );
        for m in &self.modules {
            let _ = writeln!(s, "LoadModule {m}_module {MODULES}/mod_{m}.so");
        }
        if let Some(ja4) = &self.ja4 {
            let _ = writeln!(s, "LoadModule ja4_module {}", ja4.display());
        }
        if !self.mpm_tuning.is_empty() {
            let _ = writeln!(s, "{}", self.mpm_tuning.trim_end());
        }
        if self.modules.iter().any(|m| m == "mime") {
            s.push_str("TypesConfig /etc/mime.types\n");
        }
        for l in &self.listen {
            let _ = writeln!(s, "Listen {l}");
        }
        let _ = writeln!(s, "ErrorLog {root}/error.log\nDocumentRoot {root}/htdocs");
        if let Some(f) = &self.log_format {
            let _ = writeln!(
                s,
                "LogFormat \"{}\" test\nCustomLog {root}/access.log test",
                f.replace('"', "\\\"")
            );
        }
        if !self.directives.is_empty() {
            let _ = writeln!(s, "{}", self.directives.trim_end());
        }
        if let Some(t) = &self.tls {
            let _ = writeln!(s, "<VirtualHost {}>", t.addr);
            if t.h2 {
                s.push_str("  Protocols h2 http/1.1\n");
            }
            let _ = writeln!(
                s,
                "  SSLEngine on\n  SSLCertificateFile {root}/cert.pem\n  SSLCertificateKeyFile {root}/key.pem\n</VirtualHost>"
            );
        }
        s
    }

    /// Writes `httpd.conf` (and makes `htdocs/`) in the root; returns the file's path.
    pub fn write(&self) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(self.root.join("htdocs"))?;
        let path = self.root.join("httpd.conf");
        std::fs::write(&path, self.render())?;
        Ok(path)
    }
}

/// Checks a configuration with `apache2 -t`; Err carries httpd's complaint.
pub fn check(conf: &Path) -> Result<(), String> {
    let out = std::process::Command::new("apache2")
        .arg("-t")
        .arg("-f")
        .arg(conf)
        .output()
        .map_err(|e| format!("apache2 -t: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_configuration_httpd_accepts() {
        let root = crate::tempdir("httpd-conf");
        crate::tls::self_signed(&root, "localhost", false).unwrap();
        let mut c = Conf::new(&root).with_modules(&["mime", "socache_shmcb", "ssl", "http2"]);
        let (a, b) = (crate::free_port(), crate::free_port());
        c.listen = vec![format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}")];
        c.log_format = Some("%h \"%r\" %>s".into());
        c.directives = format!("SSLSessionCache shmcb:{}/ssl_cache(512000)", root.display());
        c.tls = Some(TlsVhost {
            addr: format!("127.0.0.1:{a}"),
            h2: true,
        });
        let text = c.render();
        assert!(
            text.contains("LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so")
        );
        assert!(
            text.contains("LogFormat \"%h \\\"%r\\\" %>s\" test"),
            "{text}"
        );
        let path = c.write().unwrap();
        check(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // A broken directive is refused.
        c.directives.push_str("\nNoSuchDirective on");
        c.write().unwrap();
        assert!(check(&path).unwrap_err().contains("NoSuchDirective"));
        let _ = std::fs::remove_dir_all(root);
    }
}

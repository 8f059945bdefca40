//! Self-signed TLS certificates for test servers, made by the real `openssl` per run (valid
//! two days: nothing a test makes outlives it, and no fixed date is baked in).

use std::path::Path;
use std::process::Command;

/// Writes `key.pem` and `cert.pem` (EC P-256) for `cn` into `dir`, with a DNS subject
/// alternative name for `cn` when `san` is set (browsers require it).
pub fn self_signed(dir: &Path, cn: &str, san: bool) -> std::io::Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
    ])
    .arg(format!("/CN={cn}"));
    if san {
        cmd.arg("-addext").arg(format!("subjectAltName=DNS:{cn}"));
    }
    let out = cmd
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_certificate_for_the_name() {
        let dir = crate::tempdir("tls");
        super::self_signed(&dir, "site.test", true).unwrap();
        let out = crate::run(
            std::process::Command::new("openssl")
                .args([
                    "x509",
                    "-noout",
                    "-subject",
                    "-ext",
                    "subjectAltName",
                    "-in",
                ])
                .arg(dir.join("cert.pem")),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("CN=site.test") || text.contains("CN = site.test"),
            "{text}"
        );
        assert!(text.contains("DNS:site.test"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! The RPM as built by `rpm/build.sh` (Debian's rpmbuild, binaries linked against glibc 2.28
//! with zig): its files, modes, config flags, dependencies and scriptlets; the packaged
//! binaries run; the SELinux policy compiles against the refpolicy devel tree.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn out(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rpm_q(rpm: &Path, args: &[&str]) -> String {
    out(Command::new("rpm").arg("-qp").args(args).arg(rpm))
}

#[test]
fn rpm_contents_dependencies_and_scripts() {
    let root = root();
    let built = out(Command::new("bash")
        .arg(root.join("rpm/build.sh"))
        .current_dir(&root));
    let rpm = PathBuf::from(
        built
            .lines()
            .last()
            .expect("build.sh prints the RPM")
            .trim(),
    );
    assert!(rpm.exists(), "{built}");
    assert!(rpm.to_string_lossy().ends_with(".el8.x86_64.rpm"));
    assert!(
        built.contains("libmod_ja4.so: newest glibc symbol GLIBC_2.2"),
        "{built}"
    );

    // Files, with owners, modes and config flags.
    let files = rpm_q(
        &rpm,
        &["--qf", "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]"],
    );
    let entry = |path: &str| {
        files
            .lines()
            .find(|l| l.split(' ').next() == Some(path))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{files}"))
            .to_owned()
    };
    assert!(entry("/usr/lib64/httpd/modules/mod_ja4.so").contains("-rwxr-xr-x root root"));
    assert!(entry("/usr/bin/ja4-sidecar").contains("-rwxr-xr-x"));
    let conf = entry("/etc/httpd/conf.modules.d/10-ja4.conf");
    assert!(conf.ends_with(" cn"), "config(noreplace): {conf}");
    let toml = entry("/etc/ja4/sidecar.toml");
    assert!(
        toml.contains("-rw-r----- root ja4") && toml.ends_with(" cn"),
        "{toml}"
    );
    assert!(entry("/etc/ja4").contains("drwxr-x--- root ja4"));
    assert!(entry("/var/lib/ja4").contains("drwxr-x--- ja4 ja4"));
    for f in [
        "/usr/lib/systemd/system/ja4-sidecar.service",
        "/usr/lib/tmpfiles.d/ja4.conf",
        "/usr/lib/sysusers.d/ja4.conf",
        "/usr/share/ja4-platform/selinux/ja4.te",
        "/usr/share/ja4-platform/refdata/foxio/ja4plus-mapping.csv",
        "/usr/share/ja4-platform/refdata/anubis/crawler_ua_rules.tsv",
    ] {
        entry(f);
    }
    for m in std::fs::read_dir(root.join("sql")).unwrap() {
        let name = m.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            entry(&format!("/usr/share/ja4-platform/sql/{name}"));
        }
    }
    for lic in [
        "LICENSE",
        "LICENSE-FoxIO-1.1",
        "LICENSE-JA4",
        "NOTICE",
        "LICENSE-Anubis-data",
    ] {
        assert!(
            files
                .lines()
                .any(|l| l.starts_with("/usr/share/licenses/ja4-platform-")
                    && l.split(' ').next().unwrap().ends_with(&format!("/{lic}"))),
            "licence {lic} missing"
        );
    }
    assert!(files.contains("/docs/operations.md"));

    // Dependencies: httpd, EL's libpcap soname, nothing past glibc 2.28.
    let req = rpm_q(&rpm, &["--requires"]);
    assert!(req.contains("httpd >= 2.4.37"), "{req}");
    assert!(req.contains("libpcap.so.1()(64bit)"), "{req}");
    assert!(!req.contains("libpcap.so.0.8"), "{req}");
    for l in req.lines().filter(|l| l.contains("(GLIBC_2.")) {
        let v = l
            .split("(GLIBC_")
            .nth(1)
            .unwrap()
            .trim_end_matches(")(64bit)");
        let minor: u32 = v.split('.').nth(1).unwrap().parse().unwrap();
        assert!(minor <= 28, "{l} needs a glibc newer than el8's 2.28");
    }

    // Scriptlets: the ja4 user, the systemd macros, the first-run hints.
    let scripts = rpm_q(&rpm, &["--scripts"]);
    for want in [
        "useradd -r -g ja4",
        "systemctl --no-reload preset ja4-sidecar.service",
        "systemctl --no-reload disable --now ja4-sidecar.service",
        "systemctl try-restart ja4-sidecar.service",
        "ja4-sidecar user add admin",
    ] {
        assert!(
            scripts.contains(want),
            "{want} not in the scriptlets:\n{scripts}"
        );
    }

    // The packaged binaries run (EL's libpcap.so.1 stands in as the renamed local library).
    let tmp = std::env::temp_dir().join(format!("ja4-rpm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    out(Command::new("sh")
        .arg("-c")
        .arg(format!("rpm2cpio {} | cpio -idm --quiet", rpm.display()))
        .current_dir(&tmp));
    let pcap = root.join("mod_ja4/core/tests/fixtures/ja4-corpus/pcap/curl.pcap");
    let text = out(Command::new(tmp.join("usr/bin/ja4-sidecar"))
        .args(["pcap", "--format", "text"])
        .arg(&pcap)
        .env("LD_LIBRARY_PATH", root.join("target/rpm-pcap")));
    assert!(text.contains("t13d3112h2_e8f1e7e78f70_"), "{text}");
    // The packaged module loads into httpd (Debian's here) and checks its directives.
    let module = tmp.join("usr/lib64/httpd/modules/mod_ja4.so");
    let conf = |batch: &str| {
        let mut c = ja4_testkit::httpd::Conf::new(&tmp);
        c.listen = vec![format!("127.0.0.1:{}", ja4_testkit::free_port())];
        c.ja4 = Some(module.clone());
        c.directives = format!(
            "JA4ExportFile {}/ja4.jsonl\nJA4BatchSize {batch}",
            tmp.display()
        );
        c.www_data = false;
        let path = tmp.join(format!("httpd-{batch}.conf"));
        std::fs::create_dir_all(tmp.join("htdocs")).unwrap();
        std::fs::write(&path, c.render()).unwrap();
        Command::new("apache2")
            .arg("-t")
            .arg("-f")
            .arg(&path)
            .env("LD_LIBRARY_PATH", root.join("target/rpm-pcap"))
            .output()
            .unwrap()
    };
    let ok = conf("64");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = conf("0");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("JA4BatchSize"));
    let unit =
        std::fs::read_to_string(tmp.join("usr/lib/systemd/system/ja4-sidecar.service")).unwrap();
    for want in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RuntimeDirectory=ja4",
        "ReadWritePaths=/var/lib/ja4 /run/ja4",
        "User=ja4",
    ] {
        assert!(unit.contains(want), "{want}");
    }
    // The shipped sidecar.toml is the configuration the sidecar reads.
    let toml = tmp.join("etc/ja4/sidecar.toml");
    let cfg = ja4_sidecar::serve::Config::load(&toml).unwrap();
    assert_eq!(cfg.ingest.socket, PathBuf::from("/run/ja4/ingest.sock"));
    assert_eq!(cfg.dashboard.listen, "127.0.0.1:9480");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn selinux_policy_compiles() {
    let makefile = Path::new("/usr/share/selinux/devel/Makefile");
    assert!(
        makefile.exists(),
        "selinux-policy-dev missing: run scripts/setup.sh"
    );
    let tmp = std::env::temp_dir().join(format!("ja4-selinux-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["ja4.te", "ja4.fc", "ja4.if"] {
        std::fs::copy(root().join("rpm/selinux").join(f), tmp.join(f)).unwrap();
    }
    out(Command::new("make")
        .arg("-f")
        .arg(makefile)
        .arg("ja4.pp")
        .current_dir(&tmp));
    assert!(tmp.join("ja4.pp").metadata().unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(&tmp);
}

//! A fleet: two sidecars sharing one server store (the test ClickHouse HTTP front over the
//! embedded engine), each with its own httpd and decisions file. An analyst's entry made
//! through one node is enforced by the other node's httpd within 5 s, and lifted the same
//! way; scoring runs on one node only (`[scoring] enabled = false` on the other). Needs root.

#[path = "../store/tests/support/clickhouse_front.rs"]
mod clickhouse_front;
#[path = "../../mod_ja4/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ja4_store::chdb::{default_library, Chdb};
use ja4_testkit::sidecar::SidecarConf;

fn lists(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .arg("lists")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_decision_made_on_one_node_is_enforced_by_the_other() {
    if !need_root() {
        return;
    }
    let dir = tempdir("fleet");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let chdb = Arc::new(Chdb::open(&default_library(), &dir.join("engine")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(clickhouse_front::start(
        Arc::clone(&chdb),
        dir.join("front-tmp"),
    ));

    // Two nodes: A scores (rarely, in this test), B only publishes.
    let node = |name: &str, scoring: bool| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut c = SidecarConf::new(std::path::Path::new(env!("CARGO_BIN_EXE_ja4-sidecar")), &d);
        c.database = "fleet".into();
        c.store = format!("url = \"{url}\"\nmanage_users = false\n");
        c.sections = format!(
            "[scoring]\nenabled = {scoring}\ninterval_s = 3600\nmodels_dir = \"{}\"\ndecisions_file = \"{}\"\npublish_every_s = 1\n",
            d.join("models").display(),
            d.join("decisions.bin").display()
        );
        c
    };
    let (a, b) = (node("a", true), node("b", false));
    let sa = a.start(Duration::from_secs(60)).unwrap();
    let sb = b.start(Duration::from_secs(60)).unwrap();
    let httpd = |name: &str, c: &SidecarConf| {
        let extra = format!(
            "JA4Mitigation Enforce\nJA4DecisionFile {}\nJA4Action bot block",
            c.dir.join("decisions.bin").display()
        );
        Httpd::start(
            name,
            &Options {
                extra: &extra,
                ..Default::default()
            },
        )
    };
    let (mut ha, mut hb) = (httpd("fleet-a", &a), httpd("fleet-b", &b));
    let (url_a, url_b) = (ha.url(false, "/index.html"), hb.url(false, "/index.html"));
    assert_eq!(status_from(&url_b, "127.0.0.7"), "200");

    // The analyst works on node A; node B's httpd enforces it.
    let out = lists(
        &a.dir.join("sidecar.toml"),
        &[
            "add",
            "--kind",
            "ip",
            "--value",
            "127.0.0.7",
            "--action",
            "deny",
            "--reason",
            "fleet",
            "--analyst",
            "alice",
        ],
    );
    assert!(out.contains("127.0.0.7"), "{out}");
    let took_b = wait_status(&url_b, "127.0.0.7", "403");
    let took_a = wait_status(&url_a, "127.0.0.7", "403");
    eprintln!("deny enforced by node B after {took_b:?} (node A {took_a:?})");
    assert!(took_b < Duration::from_secs(5), "{took_b:?}");
    assert_eq!(status_from(&url_b, "127.0.0.8"), "200", "others unaffected");
    lists(
        &a.dir.join("sidecar.toml"),
        &[
            "remove",
            "--kind",
            "ip",
            "--value",
            "127.0.0.7",
            "--analyst",
            "alice",
        ],
    );
    let lifted = wait_status(&url_b, "127.0.0.7", "200");
    eprintln!("lifted on node B after {lifted:?}");
    assert!(lifted < Duration::from_secs(5), "{lifted:?}");
    ha.stop();
    hb.stop();
    drop((sa, sb));
    drop(rt);
    drop(chdb);
    let _ = std::fs::remove_dir_all(&dir);
}

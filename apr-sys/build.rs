//! Generates the httpd/APR bindings and compiles the C glue.
//!
//! Header locations come from `apxs -q INCLUDEDIR`, `apr-1-config` and `apu-1-config` (override
//! with the APXS, APR_CONFIG and APU_CONFIG environment variables). A missing tool fails the
//! build with one line naming the package to install.
use std::path::PathBuf;
use std::process::Command;

fn query(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn need(tool: String, args: &[&str]) -> String {
    query(&tool, args).unwrap_or_else(|| {
        eprintln!(
            "error: `{tool}` not found: install the Apache httpd development headers (Debian/Ubuntu: apt-get install apache2-dev; RHEL/Fedora: dnf install httpd-devel)"
        );
        std::process::exit(1);
    })
}

fn main() {
    for v in ["APXS", "APR_CONFIG", "APU_CONFIG"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=src/glue.c");
    println!("cargo:rerun-if-changed=src/glue.h");

    let apxs = std::env::var("APXS").ok().or_else(|| {
        ["apxs", "apxs2"]
            .into_iter()
            .find(|t| query(t, &["-q", "INCLUDEDIR"]).is_some())
            .map(str::to_owned)
    });
    let apxs = apxs.unwrap_or_else(|| "apxs".to_owned());
    let include_dir = need(apxs.clone(), &["-q", "INCLUDEDIR"]);
    let apr_config = std::env::var("APR_CONFIG").unwrap_or_else(|_| "apr-1-config".to_owned());
    let apu_config = std::env::var("APU_CONFIG").unwrap_or_else(|_| "apu-1-config".to_owned());
    let apr = need(apr_config, &["--includes", "--cppflags"]);
    let apu = need(apu_config, &["--includes"]);

    let mut flags: Vec<String> = vec![format!("-I{include_dir}")];
    flags.extend(
        apr.split_whitespace()
            .chain(apu.split_whitespace())
            .map(str::to_owned),
    );
    if !flags.iter().any(|f| f == "-D_GNU_SOURCE") {
        flags.push("-D_GNU_SOURCE".to_owned());
    }

    let mut cc = cc::Build::new();
    cc.file("src/glue.c").warnings(true);
    for f in &flags {
        cc.flag(f);
    }
    cc.compile("ja4glue");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&flags)
        .allowlist_function("(ap|apr|apu|ja4)_.*")
        .allowlist_type("(ap|apr|apu)_.*|request_rec|conn_rec|server_rec|process_rec|module|module_struct|command_rec|cmd_parms|ap_filter_t|ap_listen_rec")
        .allowlist_var("(AP|APR|MODULE|OK|DECLINED|DONE|HTTP|M_|APLOG|RSRC|OR|ACCESS_CONF|RAW_ARGS|TAKE).*|ap_listeners|ap_server_conf")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            eprintln!("error: bindgen failed on the httpd/APR headers in {include_dir}: {e}");
            std::process::exit(1);
        });
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("write bindings");
}

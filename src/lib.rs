//! Build metadata shared by every ja4-platform binary (`ja4-sidecar --version`, the module's
//! status page and its httpd version component).
//!
//! Owns: the version, git commit, target and profile recorded by the top-level `build.rs`.
//! Never: does I/O or depends on any other crate of the workspace.

/// The workspace version (all crates share one).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git commit the binaries were built from, or `unknown` outside a checkout.
pub const COMMIT: &str = env!("JA4_BUILD_COMMIT");
/// Rust target triple of the build.
pub const TARGET: &str = env!("JA4_BUILD_TARGET");
/// Cargo profile (`debug`/`release`).
pub const PROFILE: &str = env!("JA4_BUILD_PROFILE");

/// One-line description, e.g. `0.1.0 (3f2a9c1d0b7e x86_64-unknown-linux-gnu release)`.
pub fn long_version() -> String {
    format!("{VERSION} ({COMMIT} {TARGET} {PROFILE})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_version_names_version_and_target() {
        let v = super::long_version();
        assert!(v.starts_with(super::VERSION));
        assert!(v.contains(super::TARGET));
        assert!(!super::COMMIT.is_empty());
    }
}

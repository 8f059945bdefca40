//! JA4+ fingerprints computed from parsed protocol facts.
//!
//! Owns: the exact string formats of JA4 (+ `_r`, `_o`, `_ro`), JA3, JA4S, JA4H (+ variants),
//! JA4T/JA4TS and JA4L, following FoxIO's specification texts and, where reference tools
//! disagree, the canonical rules of the project's JA4 corpus README.
//! Never: parses bytes off the wire (that is `tls`, `http`, `tcp`) or keeps state.

pub mod ja4;
pub mod ja4h;
pub mod ja4l;
pub mod ja4s;
pub mod ja4t;

pub use ja4::{ja4, Ja3, Ja4, Ja4Set};
pub use ja4h::{HttpVersion, Ja4hSet};
pub use ja4l::Ja4l;
pub use ja4s::Ja4sSet;
pub use ja4t::ja4t;

//! The ClickHouse store: one SQL dialect, two engines.
//!
//! Owns (issue 4, in progress): the embedded engine ([`chdb`], the ClickHouse engine as a
//! library, loaded at run time), and later the server/cluster writer, migrations, batch inserts
//! and the query layer every other part uses.
//! Never: builds SQL from strings a user typed; never loses a batch silently.

pub mod chdb;
pub mod migrate;
pub mod rows;
pub mod spool;

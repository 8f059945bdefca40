//! A RowBinary row encoder for the tables the sidecar writes besides `requests_raw`: values
//! appended in column order, each in ClickHouse's binary form, so that data never becomes SQL
//! text (a user agent with a quote in it is just bytes of a string).
//!
//! Owns: the binary form of the column types those tables use (String and
//! LowCardinality(String) as varint length + bytes, integers and floats little-endian,
//! DateTime64(3) as Int64 milliseconds, IPv6 as 16 bytes in network order with IPv4 mapped,
//! Array(String), Map(String, Float32)) and the insert ([`Rows::insert`]).
//! Never: checks a value against its column (a caller's column list and its pushes must
//! agree; the tests of each writer insert into the real schema and read back).
//!
//! ```no_run
//! # fn demo(store: &ja4_store::Store) -> Result<(), ja4_store::StoreError> {
//! let mut rows = ja4_store::rowbinary::Rows::new(&["window", "hits"]);
//! rows.string("1h").u64(42).end_row();
//! rows.insert(store, "ja4", "some_table")?;
//! # Ok(()) }
//! ```

use std::net::IpAddr;

use ja4_core::batch::{put_bytes, put_varint};

use crate::{Store, StoreError};

/// A value for a column whose type is known only at run time ([`Rows::typed`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// For String and LowCardinality(String) columns.
    Str(String),
    /// For unsigned integer columns (UInt8…UInt64).
    UInt(u64),
    /// For Float32/Float64 columns.
    Float(f64),
    /// For Array(String) columns.
    Strs(Vec<String>),
}

/// Rows being encoded for one column list.
#[derive(Debug, Clone)]
pub struct Rows<'c> {
    columns: &'c [&'c str],
    buf: Vec<u8>,
    rows: usize,
}

impl<'c> Rows<'c> {
    /// Rows for a table with these columns (each row gives every column, in order).
    pub fn new(columns: &'c [&'c str]) -> Rows<'c> {
        Rows {
            columns,
            buf: Vec::new(),
            rows: 0,
        }
    }

    /// String or LowCardinality(String).
    pub fn string(&mut self, s: &str) -> &mut Self {
        put_bytes(&mut self.buf, s.as_bytes());
        self
    }

    /// Adds a UInt8 value.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Adds a UInt32 value.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Adds a UInt64 value.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Adds an Int64 value.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Float32 (a value that is not finite is written as 0: scores are finite or absent).
    pub fn f32(&mut self, v: f64) -> &mut Self {
        let v = if v.is_finite() { v as f32 } else { 0.0 };
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// DateTime64(3): milliseconds since the epoch.
    pub fn datetime64_ms(&mut self, ms: i64) -> &mut Self {
        self.i64(ms)
    }

    /// IPv6, an IPv4 address as its mapped form.
    pub fn ipv6(&mut self, ip: IpAddr) -> &mut Self {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        self.buf.extend_from_slice(&v6.octets());
        self
    }

    /// Array(String).
    pub fn strings(&mut self, v: &[String]) -> &mut Self {
        put_varint(&mut self.buf, v.len() as u64);
        for s in v {
            put_bytes(&mut self.buf, s.as_bytes());
        }
        self
    }

    /// Map(String, Float32) (keys may be LowCardinality).
    pub fn map_f32(&mut self, v: &[(String, f64)]) -> &mut Self {
        put_varint(&mut self.buf, v.len() as u64);
        for (k, x) in v {
            put_bytes(&mut self.buf, k.as_bytes());
            self.f32(*x);
        }
        self
    }

    /// `v` as a column of type `ty` (as `system.columns` names it): String,
    /// LowCardinality(String), UInt8…UInt64, Float32/Float64, Array(String). Another type, or
    /// a value that does not fit it, is an error naming both.
    pub fn typed(&mut self, ty: &str, v: &Value) -> Result<&mut Self, StoreError> {
        let base = ty
            .strip_prefix("LowCardinality(")
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(ty);
        let misfit = || StoreError::Schema(format!("{v:?} does not fit a column of type {ty}"));
        match (base, v) {
            ("String", Value::Str(s)) => {
                self.string(s);
            }
            ("UInt8", Value::UInt(n)) => self.buf.push(u8::try_from(*n).map_err(|_| misfit())?),
            ("UInt16", Value::UInt(n)) => {
                let n = u16::try_from(*n).map_err(|_| misfit())?;
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            ("UInt32", Value::UInt(n)) => {
                self.u32(u32::try_from(*n).map_err(|_| misfit())?);
            }
            ("UInt64", Value::UInt(n)) => {
                self.u64(*n);
            }
            ("Float32", Value::Float(f)) => {
                self.f32(*f);
            }
            ("Float64", Value::Float(f)) => self.buf.extend_from_slice(&f.to_le_bytes()),
            ("Array(String)" | "Array(LowCardinality(String))", Value::Strs(a)) => {
                self.strings(a);
            }
            _ => return Err(misfit()),
        }
        Ok(self)
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// Rows ended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Inserts the rows into `db.table` (nothing for none) and starts over.
    pub fn insert(&mut self, store: &Store, db: &str, table: &str) -> Result<usize, StoreError> {
        let n = self.rows;
        if n > 0 {
            store.insert_rowbinary(db, table, self.columns, std::mem::take(&mut self.buf))?;
        }
        self.rows = 0;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_clickhouse_binary_form() {
        let mut r = Rows::new(&["a", "b"]);
        r.string("ab")
            .u32(1)
            .f32(f64::NAN)
            .ipv6("192.0.2.1".parse().unwrap())
            .strings(&["x".into()])
            .map_f32(&[("k".into(), 0.5)])
            .end_row();
        let mut want = vec![2, b'a', b'b', 1, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
        want.extend_from_slice(&[1, 1, b'x', 1, 1, b'k']);
        want.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(r.buf, want);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn typed_values_follow_the_column_type() {
        let mut r = Rows::new(&["x"]);
        r.typed("LowCardinality(String)", &Value::Str("é".into()))
            .unwrap()
            .typed("UInt8", &Value::UInt(7))
            .unwrap()
            .typed("UInt32", &Value::UInt(70_000))
            .unwrap()
            .typed("Float64", &Value::Float(1.5))
            .unwrap()
            .typed("Array(String)", &Value::Strs(vec!["a".into()]))
            .unwrap();
        let mut want = vec![2, 0xc3, 0xa9, 7];
        want.extend_from_slice(&70_000u32.to_le_bytes());
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[1, 1, b'a']);
        assert_eq!(r.buf, want);
        for (ty, v) in [
            ("UInt8", Value::UInt(256)),
            ("UInt32", Value::Str("1".into())),
            ("DateTime('UTC')", Value::UInt(1)),
            ("String", Value::UInt(1)),
        ] {
            let e = r.typed(ty, &v).unwrap_err().to_string();
            assert!(e.contains(ty), "{e}");
        }
    }
}

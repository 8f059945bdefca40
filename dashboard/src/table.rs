//! Query results as the API returns them: JSON tables and CSV exports.
//!
//! Owns: decoding ClickHouse's `JSON` output format into rows, and the CSV encoding of a
//! table (RFC 4180 quoting, cells that spreadsheets would run as formulas neutralised).
//! Never: interprets cell values; never truncates silently (a capped export says so).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Rows of one query.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Table {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The rows, column name to value.
    pub rows: Vec<Map<String, Value>>,
    /// Rows before LIMIT (paging), when the engine reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Deserialize)]
struct ChJson {
    #[serde(default)]
    meta: Vec<Meta>,
    #[serde(default)]
    data: Vec<Map<String, Value>>,
    #[serde(default)]
    rows_before_limit_at_least: Option<u64>,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
}

impl Table {
    /// Decodes ClickHouse `JSON` output; empty output (a statement) is an empty table.
    pub fn from_clickhouse(bytes: &[u8]) -> Result<Table, serde_json::Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Table::default());
        }
        let j: ChJson = serde_json::from_slice(bytes)?;
        Ok(Table {
            columns: j.meta.into_iter().map(|m| m.name).collect(),
            rows: j.data,
            total: j.rows_before_limit_at_least,
        })
    }

    /// The first row's `col` as a number (for single-row summaries).
    pub fn num(&self, col: &str) -> f64 {
        self.rows
            .first()
            .and_then(|r| r.get(col))
            .and_then(value_f64)
            .unwrap_or(0.0)
    }

    /// RFC 4180 CSV with a header row.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
            let mut first = true;
            for c in cells {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&csv_cell(&c));
            }
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.columns.iter().cloned());
        for r in &self.rows {
            line(
                &mut out,
                &mut self.columns.iter().map(|c| match r.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                }),
            );
        }
        out
    }
}

/// A JSON number, or a number the engine sent as a string (64-bit integers), as f64.
pub fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One CSV cell: quoted when needed; a cell a spreadsheet would read as a formula gets a
/// leading `'` unless it is a plain number. A formula is recognised after any leading
/// whitespace or control characters (spreadsheets skip them) and in its full-width forms
/// (`＝`, `＋`, `－`, `＠`, which some spreadsheets fold to ASCII), or starting with TAB or CR.
fn csv_cell(s: &str) -> String {
    let formula = s.parse::<f64>().is_err() && {
        let lead = s.trim_start_matches(|c: char| c.is_whitespace() || c.is_control());
        lead.len() != s.len() && !lead.is_empty()
            || lead.starts_with([
                '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
            ])
    };
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_clickhouse_json() {
        let t = Table::from_clickhouse(
            br#"{"meta":[{"name":"a","type":"String"},{"name":"n","type":"UInt64"}],"data":[{"a":"x","n":3}],"rows":1,"rows_before_limit_at_least":7,"statistics":{}}"#,
        )
        .unwrap();
        assert_eq!(t.columns, ["a", "n"]);
        assert_eq!(t.total, Some(7));
        assert_eq!(t.num("n"), 3.0);
        assert!(Table::from_clickhouse(b"\n").unwrap().rows.is_empty());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let t = Table::from_clickhouse(
            br#"{"meta":[{"name":"ua"},{"name":"n"},{"name":"r"}],"data":[{"ua":"=HYPERLINK(\"x\")","n":-3,"r":["a","b"]},{"ua":"a,b","n":1.5,"r":[]}]}"#,
        )
        .unwrap();
        assert_eq!(
            t.to_csv(),
            "ua,n,r\r\n\"'=HYPERLINK(\"\"x\"\")\",-3,\"[\"\"a\"\",\"\"b\"\"]\"\r\na,b\",1.5,[]\r\n"
                .replace("a,b\"", "\"a,b\"")
        );
    }

    #[test]
    fn formulas_behind_whitespace_or_full_width_are_defused() {
        for (cell, want) in [
            ("\n=1+1", "\"'\n=1+1\""),
            (" =cmd|' /C calc'!A0", "' =cmd|' /C calc'!A0"),
            ("\u{3000}+SUM(A1)", "'\u{3000}+SUM(A1)"),
            ("\u{FF1D}HYPERLINK(1)", "'\u{FF1D}HYPERLINK(1)"),
            ("\u{FF20}SUM(1)", "'\u{FF20}SUM(1)"),
            ("\t-2", "'\t-2"),
            ("-3.5", "-3.5"),
            ("Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), want, "{cell:?}");
        }
    }
}

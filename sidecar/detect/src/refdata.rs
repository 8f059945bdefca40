//! `ja4-sidecar refdata load|refresh`: reference data into the dictionaries' tables of `sql/`.
//!
//! Owns: parsing each source format (IPLocate CSV, iptoasn TSV with its ranges turned into
//! CIDR blocks, the shipped Anubis rules and FoxIO mapping, local TSV files), replacing one
//! source's rows at a time (delete by `source`, insert, reload the dictionaries), and refusing
//! a user-agent regex the engine cannot compile (one bad rule would make the whole rule
//! dictionary, and with it every insert through the enrichment view, fail).
//! Never: leaves a source half loaded without saying so: the report counts rows loaded and
//! rows skipped, with the first reasons.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{bail, Context, Result};

use ja4_store::rowbinary::{Rows, Value as Lit};
use ja4_store::Store;

/// A network and what owns it (`ref_ip_asn`).
#[derive(Debug, Clone, PartialEq)]
pub struct IpAsn {
    /// The network (CIDR).
    pub network: String,
    /// Its autonomous system.
    pub asn: u32,
    /// Its country (ISO 3166 code).
    pub country: String,
    /// The AS's name.
    pub as_name: String,
    /// The organisation.
    pub org: String,
    /// Its domain.
    pub domain: String,
}

/// Rows parsed from one file, with what had to be skipped.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The rows read.
    pub rows: Vec<T>,
    /// Lines that could not be read.
    pub skipped: usize,
    /// Why, one line each (the first few).
    pub reasons: Vec<String>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            rows: Vec::new(),
            skipped: 0,
            reasons: Vec::new(),
        }
    }
}

impl<T> Parsed<T> {
    fn skip(&mut self, line: usize, why: impl std::fmt::Display) {
        self.skipped += 1;
        if self.reasons.len() < 5 {
            self.reasons.push(format!("line {line}: {why}"));
        }
    }
}

/// The CIDR blocks covering `start..=end` exactly (same address family).
pub fn range_to_cidrs(start: IpAddr, end: IpAddr) -> Result<Vec<String>> {
    let (lo, hi, bits, v4) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            u128::from(u32::from(a)),
            u128::from(u32::from(b)),
            32u32,
            true,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32, false),
        _ => bail!("{start} and {end} are of different address families"),
    };
    if lo > hi {
        bail!("range {start} - {end} is empty");
    }
    let mut out = Vec::new();
    let mut cur = lo;
    loop {
        // The largest block aligned at `cur` that does not pass `hi`.
        let last_of = |s: u32| {
            if s >= 128 {
                u128::MAX
            } else {
                cur + ((1u128 << s) - 1)
            }
        };
        let mut size_bits = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        while size_bits > 0 && last_of(size_bits) > hi {
            size_bits -= 1;
        }
        let prefix = bits - size_bits;
        let addr: IpAddr = if v4 {
            IpAddr::V4((cur as u32).into())
        } else {
            IpAddr::V6(cur.into())
        };
        out.push(format!("{addr}/{prefix}"));
        let last = last_of(size_bits);
        if last >= hi {
            break;
        }
        cur = last + 1;
    }
    Ok(out)
}

fn asn_number(s: &str) -> Option<u32> {
    let s = s.trim();
    s.strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s)
        .parse()
        .ok()
}

fn valid_network(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return s.parse::<IpAddr>().is_ok();
    };
    match (addr.parse::<IpAddr>(), len.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
        (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
        _ => false,
    }
}

/// IPLocate's CSV: `network,asn,country_code,name,org,domain` (header row).
pub fn parse_iplocate(text: &str) -> Result<Parsed<IpAsn>> {
    let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers()?.iter().map(|h| h.trim().to_owned()).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("IPLocate CSV: no '{name}' column"))
    };
    let (n, a, c, nm, o, d) = (
        col("network")?,
        col("asn")?,
        col("country_code")?,
        col("name")?,
        col("org")?,
        col("domain")?,
    );
    let mut out = Parsed::default();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let Ok(rec) = rec else {
            out.skip(line, "unreadable CSV record");
            continue;
        };
        let get = |j: usize| rec.get(j).unwrap_or("").trim().to_owned();
        let network = get(n);
        if !valid_network(&network) {
            out.skip(line, format_args!("'{network}' is not a network"));
            continue;
        }
        let Some(asn) = asn_number(&get(a)) else {
            out.skip(line, format_args!("'{}' is not an ASN", get(a)));
            continue;
        };
        out.rows.push(IpAsn {
            network,
            asn,
            country: get(c),
            as_name: get(nm),
            org: get(o),
            domain: get(d),
        });
    }
    Ok(out)
}

/// iptoasn's TSV: `start end asn country owner` (no header); ranges become CIDR blocks and
/// unrouted ranges (ASN 0) are left out.
pub fn parse_iptoasn(text: &str) -> Result<Parsed<IpAsn>> {
    let mut out = Parsed::default();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 5 {
            out.skip(line, "fewer than 5 fields");
            continue;
        }
        let (Ok(start), Ok(end)) = (f[0].trim().parse::<IpAddr>(), f[1].trim().parse::<IpAddr>())
        else {
            out.skip(line, "bad addresses");
            continue;
        };
        let Some(asn) = asn_number(f[2]) else {
            out.skip(line, format_args!("'{}' is not an ASN", f[2]));
            continue;
        };
        if asn == 0 {
            continue;
        }
        match range_to_cidrs(start, end) {
            Ok(blocks) => {
                for network in blocks {
                    out.rows.push(IpAsn {
                        network,
                        asn,
                        country: f[3].trim().to_owned(),
                        as_name: f[4].trim().to_owned(),
                        org: f[4].trim().to_owned(),
                        domain: String::new(),
                    });
                }
            }
            Err(e) => out.skip(line, e),
        }
    }
    Ok(out)
}

/// A TSV with a header row naming exactly `columns` (in any order); rows as strings in
/// `columns` order.
pub fn parse_tsv(text: &str, columns: &[&str]) -> Result<Parsed<Vec<String>>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        bail!("empty file (expected a header: {})", columns.join("\t"));
    };
    let names: Vec<&str> = header.split('\t').map(str::trim).collect();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .with_context(|| format!("no '{c}' column (header: {})", names.join(", ")))
        })
        .collect::<Result<_>>()?;
    let mut out = Parsed::default();
    for (i, l) in lines {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() != names.len() {
            out.skip(
                i + 1,
                format_args!("{} fields, the header has {}", f.len(), names.len()),
            );
            continue;
        }
        out.rows
            .push(at.iter().map(|&j| f[j].trim().to_owned()).collect());
    }
    Ok(out)
}

/// One application label of a fingerprint (`ref_fingerprints`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Which fingerprint (`ja4`, `ja4h`, `ja4t`…).
    pub kind: &'static str,
    /// The fingerprint.
    pub value: String,
    /// The application that sends it.
    pub application: String,
    /// Its TLS or HTTP library.
    pub library: String,
    /// Its device.
    pub device: String,
    /// Its operating system.
    pub os: String,
    /// `browser`, `bot`, `tool`, `malware`…
    pub category: &'static str,
    /// Whether it is a bot.
    pub is_bot: bool,
    /// Anything else the source says.
    pub notes: String,
}

impl Fingerprint {
    /// The label shown: the application, else the library (`Python`).
    pub fn label(&self) -> &str {
        if self.application.is_empty() {
            &self.library
        } else {
            &self.application
        }
    }
}

/// One measured JA4 family (`refdata/measured/ja4-families.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// `JA4_a[0..4]_JA4_b` ([`ja4_ml::identity::ja4_family`]).
    pub family: String,
    /// What was measured (`Mozilla Firefox`, `Python`).
    pub application: String,
    /// `browser` or `library`.
    pub category: String,
    /// The client and version it was measured with.
    pub measured_with: String,
}

/// The measured families: tab-separated `family application category example_ja4
/// measured_with`, `#` comments; the first row of a family wins, a row whose family is not
/// its example JA4's family or whose category is unknown is skipped (the module reads the
/// same file with the same parser, `ja4_core::stack::parse_labels`).
pub fn parse_families(text: &str) -> Parsed<Family> {
    let mut p = Parsed::default();
    let mut seen = std::collections::HashSet::new();
    let labels = ja4_core::stack::parse_labels(text);
    for (line, why) in labels.skipped {
        p.skip(line, why);
    }
    for line in text.lines() {
        let f: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        let [family, .., measured_with] = f[..] else {
            continue;
        };
        if let Some(l) = labels.labels.get(family) {
            if seen.insert(family.to_owned()) {
                p.rows.push(Family {
                    family: family.to_owned(),
                    application: l.application.clone(),
                    category: l.category.clone(),
                    measured_with: measured_with.to_owned(),
                });
            }
        }
    }
    p
}

/// The columns of `ref_fingerprints` the loader writes, in row order.
const FINGERPRINT_COLUMNS: [&str; 9] = [
    "kind",
    "value",
    "application",
    "library",
    "device",
    "os",
    "category",
    "is_bot",
    "notes",
];

const BROWSERS: [&str; 6] = ["browser", "chrome", "chromium", "firefox", "safari", "edge"];

/// FoxIO's `ja4plus-mapping.csv`: one label per fingerprint column that is filled.
pub fn parse_ja4plus_mapping(text: &str) -> Result<Parsed<Fingerprint>> {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rd
        .headers()?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let kinds: Vec<(&'static str, usize)> = ["ja4", "ja4s", "ja4h", "ja4x", "ja4t", "ja4tscan"]
        .into_iter()
        .filter_map(|k| col(k).map(|i| (k, i)))
        .collect();
    if kinds.is_empty() {
        bail!("ja4plus mapping: no fingerprint columns in the header");
    }
    let mut out = Parsed::default();
    for (i, rec) in rd.records().enumerate() {
        let Ok(rec) = rec else {
            out.skip(i + 2, "unreadable CSV record");
            continue;
        };
        let get = |c: Option<usize>| c.and_then(|j| rec.get(j)).unwrap_or("").trim().to_owned();
        let (application, library) = (get(col("application")), get(col("library")));
        let label = format!("{application} {library}").to_ascii_lowercase();
        let browser = BROWSERS.iter().any(|b| label.contains(b));
        for &(kind, j) in &kinds {
            let value = rec.get(j).unwrap_or("").trim();
            if value.is_empty() {
                continue;
            }
            out.rows.push(Fingerprint {
                kind,
                value: value.to_owned(),
                application: application.clone(),
                library: library.clone(),
                device: get(col("device")),
                os: get(col("os")),
                category: if browser {
                    "browser"
                } else if !library.is_empty() {
                    "library"
                } else {
                    "application"
                },
                is_bot: !browser && !library.is_empty(),
                notes: get(col("notes")),
            });
        }
    }
    Ok(out)
}

/// Replaces `source`'s rows of `db.table` with `rows` (RowBinary, each value encoded for its
/// column's type as the store reports it).
fn replace(
    store: &Store,
    db: &str,
    table: &str,
    source: &str,
    cols: &[&str],
    rows: &[Vec<Lit>],
) -> Result<()> {
    store
        .query_params(
            &format!(
                "ALTER TABLE {db}.{table} DELETE WHERE source = {{source:String}} SETTINGS mutations_sync = 2"
            ),
            "TSV",
            &[("source", source.to_owned())],
        )
        .with_context(|| format!("clearing {source} rows of {db}.{table}"))?;
    let types = store
        .columns(db, table)
        .with_context(|| format!("reading the columns of {db}.{table}"))?;
    let mut columns: Vec<&str> = cols.to_vec();
    columns.push("source");
    let column_types: Vec<&str> = columns
        .iter()
        .map(|c| {
            types
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, t)| t.as_str())
                .with_context(|| format!("{db}.{table} has no column {c}"))
        })
        .collect::<Result<_>>()?;
    let source = Lit::Str(source.to_owned());
    for chunk in rows.chunks(20_000) {
        let mut out = Rows::new(&columns);
        for r in chunk {
            for (v, ty) in r.iter().chain([&source]).zip(&column_types) {
                out.typed(ty, v)
                    .with_context(|| format!("a row for {db}.{table}"))?;
            }
            out.end_row();
        }
        out.insert(store, db, table)
            .with_context(|| format!("inserting {} rows into {db}.{table}", chunk.len()))?;
    }
    Ok(())
}

/// What `refdata load` should read.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Sources {
    /// Directory of the shipped reference data (Anubis rules, FoxIO mapping); default
    /// $JA4_REFDATA_DIR, /usr/share/ja4-platform/refdata, or the source tree's refdata/.
    #[arg(long)]
    pub package_dir: Option<PathBuf>,
    /// Do not load the shipped reference data.
    #[arg(long)]
    pub no_package: bool,
    /// IP→ASN/country from IPLocate (CSV: network,asn,country_code,name,org,domain).
    #[arg(long)]
    pub iplocate: Option<PathBuf>,
    /// IP→ASN/country from iptoasn.com (TSV: start end asn country owner).
    #[arg(long)]
    pub iptoasn: Option<PathBuf>,
    /// Known bot networks (TSV: network bot_name category verified).
    #[arg(long)]
    pub bot_ips: Option<PathBuf>,
    /// Known bot JA4s (TSV: ja4 application category is_bot).
    #[arg(long)]
    pub bot_ja4: Option<PathBuf>,
    /// ASN reputation (TSV: asn reputation score note).
    #[arg(long)]
    pub asn_reputation: Option<PathBuf>,
    /// Local crawler rules by user agent (TSV: name action category regexp).
    #[arg(long)]
    pub ua_rules: Option<PathBuf>,
    /// Local crawler rules by network (TSV: network name action category).
    #[arg(long)]
    pub ip_rules: Option<PathBuf>,
    /// Local crawler rules by ASN (TSV: asn name action category).
    #[arg(long)]
    pub asn_rules: Option<PathBuf>,
    /// Local crawler rules by country (TSV: country name action category).
    #[arg(long)]
    pub country_rules: Option<PathBuf>,
}

/// The shipped data directory.
pub fn package_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os("JA4_REFDATA_DIR") {
        return PathBuf::from(p);
    }
    let installed = PathBuf::from("/usr/share/ja4-platform/refdata");
    if installed.exists() {
        return installed;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../refdata")
}

/// One line of the load report.
#[derive(Debug)]
pub struct Loaded {
    /// The file read.
    pub source: String,
    /// The table it went to.
    pub table: &'static str,
    /// Rows stored.
    pub rows: usize,
    /// Lines skipped.
    pub skipped: usize,
    /// Why, one line each (the first few).
    pub reasons: Vec<String>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

const ACTIONS: [&str; 5] = ["allow", "deny", "challenge", "observe", "verify"];

/// Loads every named source; returns what was loaded.
pub fn load(store: &Store, db: &str, src: &Sources) -> Result<Vec<Loaded>> {
    let mut report = Vec::new();
    let ip_cols = ["network", "asn", "country", "as_name", "org", "domain"];
    let ip_rows = |p: &Parsed<IpAsn>| -> Vec<Vec<Lit>> {
        p.rows
            .iter()
            .map(|r| {
                vec![
                    Lit::Str(r.network.clone()),
                    Lit::UInt(u64::from(r.asn)),
                    Lit::Str(r.country.clone()),
                    Lit::Str(r.as_name.clone()),
                    Lit::Str(r.org.clone()),
                    Lit::Str(r.domain.clone()),
                ]
            })
            .collect()
    };
    for (file, name, parse) in [
        (
            &src.iplocate,
            "iplocate",
            parse_iplocate as fn(&str) -> Result<Parsed<IpAsn>>,
        ),
        (&src.iptoasn, "iptoasn", parse_iptoasn),
    ] {
        if let Some(f) = file {
            let p = parse(&read(f)?).with_context(|| format!("parsing {}", f.display()))?;
            replace(store, db, "ref_ip_asn", name, &ip_cols, &ip_rows(&p))?;
            report.push(Loaded {
                source: name.into(),
                table: "ref_ip_asn",
                rows: p.rows.len(),
                skipped: p.skipped,
                reasons: p.reasons,
            });
        }
    }
    let dir = package_dir(src.package_dir.as_deref());
    if !src.no_package {
        let anubis = dir.join("anubis");
        load_ua_rules(
            store,
            db,
            "anubis",
            &anubis.join("crawler_ua_rules.tsv"),
            1_000_000,
            &mut report,
        )?;
        load_rows(
            store,
            db,
            "anubis",
            &anubis.join("crawler_ip_rules.tsv"),
            RowsKind::IpRules,
            &mut report,
        )?;
        load_rows(
            store,
            db,
            "anubis",
            &anubis.join("bot_ips.tsv"),
            RowsKind::BotIps,
            &mut report,
        )?;
        let mapping = dir.join("foxio/ja4plus-mapping.csv");
        let p = parse_ja4plus_mapping(&read(&mapping)?)?;
        let rows: Vec<Vec<Lit>> = p
            .rows
            .iter()
            .map(|f| {
                let label = f.label();
                vec![
                    Lit::Str(f.kind.into()),
                    Lit::Str(f.value.clone()),
                    Lit::Str(label.to_owned()),
                    Lit::Str(f.library.clone()),
                    Lit::Str(f.device.clone()),
                    Lit::Str(f.os.clone()),
                    Lit::Str(f.category.into()),
                    Lit::UInt(u64::from(f.is_bot)),
                    Lit::Str(f.notes.clone()),
                ]
            })
            .collect();
        // Browsers change the extension part of their JA4 with every release; their cipher
        // part (JA4_a + JA4_b) is stable: known browser prefixes are kept as kind `ja4_ab`.
        let mut rows = rows;
        let mut prefixes = std::collections::BTreeMap::new();
        for f in p
            .rows
            .iter()
            .filter(|f| f.kind == "ja4" && f.category == "browser")
        {
            if let Some((ab, _)) = f.value.rsplit_once('_') {
                let label = f.label();
                prefixes
                    .entry(ab.to_owned())
                    .or_insert_with(|| label.to_owned());
            }
        }
        for (ab, label) in prefixes {
            rows.push(vec![
                Lit::Str("ja4_ab".into()),
                Lit::Str(ab),
                Lit::Str(label),
                Lit::Str(String::new()),
                Lit::Str(String::new()),
                Lit::Str(String::new()),
                Lit::Str("browser".into()),
                Lit::UInt(0),
                Lit::Str("JA4_a + JA4_b of a known browser".into()),
            ]);
        }
        replace(
            store,
            db,
            "ref_fingerprints",
            "foxio",
            &FINGERPRINT_COLUMNS,
            &rows,
        )?;
        // Families measured here (refdata/measured): browsers and library stacks whose
        // exact JA4 FoxIO's mapping does not list.
        let measured = dir.join("measured/ja4-families.tsv");
        let fam = parse_families(&read(&measured)?);
        // A stack is the same with or without SNI: each family is also written with the
        // other SNI mode (clients that connect to an address).
        let fam_rows: Vec<Vec<Lit>> = fam
            .rows
            .iter()
            .flat_map(|f| {
                let other = ja4_core::stack::other_sni(&f.family)
                    .filter(|o| !fam.rows.iter().any(|g| &g.family == o));
                std::iter::once(f.family.clone())
                    .chain(other)
                    .map(move |family| (f, family))
            })
            .map(|(f, family)| {
                vec![
                    Lit::Str("ja4_family".into()),
                    Lit::Str(family),
                    Lit::Str(f.application.clone()),
                    Lit::Str(String::new()),
                    Lit::Str(String::new()),
                    Lit::Str(String::new()),
                    Lit::Str(f.category.clone()),
                    Lit::UInt(0),
                    Lit::Str(format!("measured: {}", f.measured_with)),
                ]
            })
            .collect();
        // HTTP/2 fingerprints measured here (refdata/measured/h2-fingerprints.tsv): kind `h2`.
        let h2_text = read(&dir.join("measured/h2-fingerprints.tsv"))?;
        let h2 = ja4_core::stack::parse_h2_labels(&h2_text);
        let mut fam_rows = fam_rows;
        let mut seen = std::collections::HashSet::new();
        for line in h2_text.lines() {
            let f: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
            let [akamai, _, _, measured_with] = f[..] else {
                continue;
            };
            let Some(l) = h2.labels.get(akamai).filter(|_| seen.insert(akamai)) else {
                continue;
            };
            fam_rows.push(vec![
                Lit::Str("h2".into()),
                Lit::Str(akamai.to_owned()),
                Lit::Str(l.application.clone()),
                Lit::Str(String::new()),
                Lit::Str(String::new()),
                Lit::Str(String::new()),
                Lit::Str(l.category.clone()),
                Lit::UInt(0),
                Lit::Str(format!("measured: {measured_with}")),
            ]);
        }
        replace(
            store,
            db,
            "ref_fingerprints",
            "measured",
            &FINGERPRINT_COLUMNS,
            &fam_rows,
        )?;
        report.push(Loaded {
            source: "measured".into(),
            table: "ref_fingerprints",
            rows: fam_rows.len(),
            skipped: fam.skipped,
            reasons: fam.reasons,
        });
        // JA4s of non-browser clients are known automation.
        let bots: Vec<Vec<Lit>> = p
            .rows
            .iter()
            .filter(|f| f.kind == "ja4")
            .map(|f| {
                let app = f.label();
                vec![
                    Lit::Str(f.value.clone()),
                    Lit::Str(app.to_owned()),
                    Lit::Str(f.category.into()),
                    Lit::UInt(u64::from(f.is_bot)),
                ]
            })
            .collect();
        replace(
            store,
            db,
            "ref_bot_ja4",
            "foxio",
            &["ja4", "application", "category", "is_bot"],
            &bots,
        )?;
        report.push(Loaded {
            source: "foxio".into(),
            table: "ref_fingerprints",
            rows: rows.len(),
            skipped: p.skipped,
            reasons: p.reasons,
        });
    }
    if let Some(f) = &src.ua_rules {
        load_ua_rules(store, db, "local", f, 2_000_000, &mut report)?;
    }
    for (file, kind) in [
        (&src.ip_rules, RowsKind::IpRules),
        (&src.asn_rules, RowsKind::AsnRules),
        (&src.country_rules, RowsKind::CountryRules),
        (&src.bot_ips, RowsKind::BotIps),
        (&src.bot_ja4, RowsKind::BotJa4),
        (&src.asn_reputation, RowsKind::AsnReputation),
    ] {
        if let Some(f) = file {
            load_rows(store, db, "local", f, kind, &mut report)?;
        }
    }
    for d in [
        "dict_ip_asn",
        "dict_bot_ips",
        "dict_bot_ja4",
        "dict_asn_reputation",
        "dict_crawler_ua",
        "dict_crawler_ip",
        "dict_crawler_asn",
        "dict_crawler_country",
        "dict_fingerprints",
    ] {
        store
            .execute(&format!("SYSTEM RELOAD DICTIONARY {db}.{d}"))
            .with_context(|| format!("reloading {db}.{d}"))?;
    }
    Ok(report)
}

#[derive(Clone, Copy)]
enum RowsKind {
    IpRules,
    AsnRules,
    CountryRules,
    BotIps,
    BotJa4,
    AsnReputation,
}

fn load_rows(
    store: &Store,
    db: &str,
    source: &str,
    path: &Path,
    kind: RowsKind,
    report: &mut Vec<Loaded>,
) -> Result<()> {
    let (table, cols): (&'static str, &[&str]) = match kind {
        RowsKind::IpRules => (
            "crawler_ip_rules",
            &["network", "name", "action", "category"],
        ),
        RowsKind::AsnRules => ("crawler_asn_rules", &["asn", "name", "action", "category"]),
        RowsKind::CountryRules => (
            "crawler_country_rules",
            &["country", "name", "action", "category"],
        ),
        RowsKind::BotIps => (
            "ref_bot_ips",
            &["network", "bot_name", "category", "verified"],
        ),
        RowsKind::BotJa4 => ("ref_bot_ja4", &["ja4", "application", "category", "is_bot"]),
        RowsKind::AsnReputation => (
            "ref_asn_reputation",
            &["asn", "reputation", "score", "note"],
        ),
    };
    let mut p =
        parse_tsv(&read(path)?, cols).with_context(|| format!("parsing {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, r) in std::mem::take(&mut p.rows).into_iter().enumerate() {
        let line = i + 2;
        let lit = match kind {
            RowsKind::IpRules | RowsKind::BotIps if !valid_network(&r[0]) => {
                p.skip(line, format_args!("'{}' is not a network", r[0]));
                continue;
            }
            RowsKind::IpRules | RowsKind::AsnRules | RowsKind::CountryRules
                if !ACTIONS.contains(&r[2].as_str()) =>
            {
                p.skip(
                    line,
                    format_args!("action '{}' is not one of {}", r[2], ACTIONS.join(", ")),
                );
                continue;
            }
            RowsKind::AsnRules => match asn_number(&r[0]) {
                Some(a) => vec![
                    Lit::UInt(u64::from(a)),
                    Lit::Str(r[1].clone()),
                    Lit::Str(r[2].clone()),
                    Lit::Str(r[3].clone()),
                ],
                None => {
                    p.skip(line, format_args!("'{}' is not an ASN", r[0]));
                    continue;
                }
            },
            RowsKind::AsnReputation => match (asn_number(&r[0]), r[2].parse::<f64>()) {
                (Some(a), Ok(score)) if (0.0..=1.0).contains(&score) => {
                    vec![
                        Lit::UInt(u64::from(a)),
                        Lit::Str(r[1].clone()),
                        Lit::Float(score),
                        Lit::Str(r[3].clone()),
                    ]
                }
                _ => {
                    p.skip(line, "needs an ASN and a score in [0, 1]");
                    continue;
                }
            },
            RowsKind::BotIps | RowsKind::BotJa4 => {
                let flag = matches!(r[3].as_str(), "1" | "true" | "yes");
                vec![
                    Lit::Str(r[0].clone()),
                    Lit::Str(r[1].clone()),
                    Lit::Str(r[2].clone()),
                    Lit::UInt(u64::from(flag)),
                ]
            }
            _ => r.into_iter().map(Lit::Str).collect(),
        };
        rows.push(lit);
    }
    replace(store, db, table, source, cols, &rows)?;
    report.push(Loaded {
        source: source.into(),
        table,
        rows: rows.len(),
        skipped: p.skipped,
        reasons: p.reasons,
    });
    Ok(())
}

/// User-agent rules into the regexp tree's table, each regex checked by the engine first.
fn load_ua_rules(
    store: &Store,
    db: &str,
    source: &str,
    path: &Path,
    id_base: u64,
    report: &mut Vec<Loaded>,
) -> Result<()> {
    let mut p = parse_tsv(&read(path)?, &["name", "action", "category", "regexp"])
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, r) in std::mem::take(&mut p.rows).into_iter().enumerate() {
        let line = i + 2;
        if !ACTIONS.contains(&r[1].as_str()) {
            p.skip(
                line,
                format_args!("action '{}' is not one of {}", r[1], ACTIONS.join(", ")),
            );
            continue;
        }
        if r[3].is_empty()
            || store
                .query_params(
                    "SELECT match('', {re:String})",
                    "TSV",
                    &[("re", r[3].clone())],
                )
                .is_err()
        {
            p.skip(
                line,
                format_args!("the engine cannot compile the regex of '{}'", r[0]),
            );
            continue;
        }
        rows.push(vec![
            Lit::UInt(id_base + rows.len() as u64),
            Lit::UInt(0),
            Lit::Str(r[3].clone()),
            Lit::Strs(vec!["name".into(), "action".into(), "category".into()]),
            Lit::Strs(vec![r[0].clone(), r[1].clone(), r[2].clone()]),
        ]);
    }
    replace(
        store,
        db,
        "crawler_ua_rules",
        source,
        &["id", "parent_id", "regexp", "keys", "values"],
        &rows,
    )?;
    report.push(Loaded {
        source: source.into(),
        table: "crawler_ua_rules",
        rows: rows.len(),
        skipped: p.skipped,
        reasons: p.reasons,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_exact_cidr_blocks() {
        let c = |a: &str, b: &str| range_to_cidrs(a.parse().unwrap(), b.parse().unwrap()).unwrap();
        assert_eq!(c("1.0.0.0", "1.0.0.255"), ["1.0.0.0/24"]);
        assert_eq!(c("1.0.0.0", "1.0.1.0"), ["1.0.0.0/24", "1.0.1.0/32"]);
        assert_eq!(
            c("10.0.0.1", "10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(c("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            c("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["2001:db8::/32"]
        );
        assert_eq!(c("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["::/0"]);
        assert!(range_to_cidrs("1.0.0.1".parse().unwrap(), "1.0.0.0".parse().unwrap()).is_err());
        assert!(range_to_cidrs("1.0.0.1".parse().unwrap(), "::1".parse().unwrap()).is_err());
    }

    #[test]
    fn iplocate_and_iptoasn_formats() {
        let p = parse_iplocate("network,asn,country_code,name,org,domain\n1.0.0.0/24,AS13335,AU,CLOUDFLARENET,Cloudflare Inc,cloudflare.com\n2001:db8::/32,64500,DE,DOC,Doc,doc.example\nnot-a-net,1,US,a,b,c\n").unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].asn, 13335);
        assert_eq!(p.skipped, 1);
        assert!(p.reasons[0].contains("line 4"), "{:?}", p.reasons);
        let p = parse_iptoasn("1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.4.0\t1.0.5.255\t38803\tAU\tWPL-AS-AP\n1.0.6.0\t1.0.6.255\t0\tNone\tNot routed\nbad line\n").unwrap();
        assert_eq!(
            p.rows
                .iter()
                .map(|r| r.network.as_str())
                .collect::<Vec<_>>(),
            ["1.0.0.0/24", "1.0.4.0/23"]
        );
        assert_eq!(p.skipped, 1);
    }

    #[test]
    fn measured_families_parse_and_bad_rows_are_skipped() {
        let p = parse_families(
            "#family\tapplication\tcategory\texample_ja4\tmeasured_with\n\
             t13d_86a278354501\tMozilla Firefox\tbrowser\tt13d1617h2_86a278354501_3cbfd9057e0d\tfirefox-esr 153\n\
             t13d_86a278354501\tSomething else\tbrowser\tt13d1617h2_86a278354501_3cbfd9057e0d\tlater row\n\
             t13d_ffffffffffff\tWrong\tlibrary\tt13d1617h2_86a278354501_3cbfd9057e0d\tx\n\
             t13d_85036bcba153\tPython\tgadget\tt13d181100_85036bcba153_d41ae481755e\tx\n\
             too\tfew\n",
        );
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].application, "Mozilla Firefox");
        assert_eq!(p.skipped, 3, "{:?}", p.reasons);
        let shipped =
            parse_families(&read(&package_dir(None).join("measured/ja4-families.tsv")).unwrap());
        assert_eq!(shipped.skipped, 0, "{:?}", shipped.reasons);
        for (family, category) in [
            ("t13d_86a278354501", "browser"),
            ("t13d_85036bcba153", "library"),
            ("t13d_8daaf6152771", "browser"),
        ] {
            assert!(
                shipped
                    .rows
                    .iter()
                    .any(|f| f.family == family && f.category == category),
                "{family} {category}"
            );
        }
    }

    #[test]
    fn shipped_data_parses() {
        let dir = package_dir(Some(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../refdata"),
        ));
        let ua = parse_tsv(
            &read(&dir.join("anubis/crawler_ua_rules.tsv")).unwrap(),
            &["name", "action", "category", "regexp"],
        )
        .unwrap();
        assert!(ua.rows.len() > 20 && ua.skipped == 0);
        assert!(ua
            .rows
            .iter()
            .any(|r| r[0] == "googlebot" && r[1] == "verify"));
        let bots = parse_tsv(
            &read(&dir.join("anubis/bot_ips.tsv")).unwrap(),
            &["network", "bot_name", "category", "verified"],
        )
        .unwrap();
        assert!(
            bots.rows.iter().all(|r| valid_network(&r[0])),
            "bad network in bot_ips.tsv"
        );
        let m =
            parse_ja4plus_mapping(&read(&dir.join("foxio/ja4plus-mapping.csv")).unwrap()).unwrap();
        assert!(m.rows.len() > 50);
        assert!(m
            .rows
            .iter()
            .any(|f| f.kind == "ja4" && f.category == "browser" && !f.is_bot));
        assert!(m
            .rows
            .iter()
            .any(|f| f.kind == "ja4" && f.library == "Python" && f.is_bot));
    }
}

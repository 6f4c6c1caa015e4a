//! The drive layout's meaning: `datasets/<name>/<version>/<file>` is one file of one
//! version of a dataset, loaded into `ai_raw_<format>.<name>__<version>`.

use sha2::Digest as _;

/// The folder the sync reads datasets from.
pub const DATASETS: &str = "datasets";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Format {
    /// The schema its tables go to.
    pub fn schema(self) -> &'static str {
        match self {
            Format::Csv | Format::Tsv => "ai_raw_csv",
            Format::Json | Format::Jsonl => "ai_raw_json",
            Format::Parquet => "ai_raw_parquet",
        }
    }
}

/// Where a file belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub dataset: String,
    pub version: String,
    pub format: Format,
    pub compression: Compression,
}

/// What a path under the source root is to the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A data file of a dataset version.
    Data(Placement),
    /// Documentation and other files that belong there but are not data (README.md,
    /// schema notes); not loaded, not an error.
    Other,
    /// A file in a dataset version whose format ferry does not read.
    Unsupported { dataset: String, version: String },
    /// Not under `datasets/<name>/<version>/`.
    Outside,
}

pub fn classify(path: &str) -> Kind {
    let mut parts = path.split('/');
    let (Some(DATASETS), Some(dataset), Some(version), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Kind::Outside;
    };
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s, Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst") {
        (s, Compression::Zstd)
    } else {
        (name.as_str(), Compression::None)
    };
    let format = match stem.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => Format::Csv,
        Some("tsv" | "tab") => Format::Tsv,
        Some("json") => Format::Json,
        Some("jsonl" | "ndjson") => Format::Jsonl,
        Some("parquet" | "pq") => Format::Parquet,
        Some("md" | "txt" | "yaml" | "yml" | "toml") => return Kind::Other,
        _ => {
            return Kind::Unsupported {
                dataset: dataset.to_owned(),
                version: version.to_owned(),
            };
        }
    };
    Kind::Data(Placement {
        dataset: dataset.to_owned(),
        version: version.to_owned(),
        format,
        compression,
    })
}

/// `<dataset>__<version>` as a Postgres identifier: lower case, `[a-z0-9_]` only, at most
/// 63 bytes (longer names keep a hash of the full name, so two never collide).
pub fn table_name(dataset: &str, version: &str) -> String {
    let full = format!("{dataset}__{version}");
    let mut name: String = full
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'd');
    }
    if name == full && name.len() <= 63 {
        return name;
    }
    // Changed or too long: keep a readable prefix and a hash of the original name.
    let hash = hex::encode(sha2::Sha256::digest(full.as_bytes()));
    name.truncate(54);
    format!("{name}_{}", &hash[..8])
}

/// An identifier, quoted for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_layout_and_extension() {
        let data = |d: &str, v: &str, format, compression| {
            Kind::Data(Placement {
                dataset: d.into(),
                version: v.into(),
                format,
                compression,
            })
        };
        assert_eq!(
            classify("datasets/market/2024-06-01/prices.csv"),
            data("market", "2024-06-01", Format::Csv, Compression::None)
        );
        assert_eq!(
            classify("datasets/market/v2/part/a.JSONL.gz"),
            data("market", "v2", Format::Jsonl, Compression::Gzip)
        );
        assert_eq!(
            classify("datasets/m/v/x.parquet"),
            data("m", "v", Format::Parquet, Compression::None)
        );
        assert_eq!(
            classify("datasets/market/2024-06-01/README.md"),
            Kind::Other
        );
        assert_eq!(
            classify("datasets/market/2024-06-01/model.bin"),
            Kind::Unsupported {
                dataset: "market".into(),
                version: "2024-06-01".into()
            }
        );
        assert_eq!(classify("datasets/market/prices.csv"), Kind::Outside);
        assert_eq!(classify("reports/q1.csv"), Kind::Outside);
    }

    #[test]
    fn table_names_are_safe_identifiers_that_do_not_collide() {
        assert_eq!(table_name("market", "v2"), "market__v2");
        let dated = table_name("market", "2024-06-01");
        assert!(dated.starts_with("market__2024_06_01_"), "{dated}");
        assert_ne!(table_name("a-b", "v"), table_name("a_b", "v"));
        let long = table_name(&"x".repeat(80), "v1");
        assert!(long.len() <= 63, "{long}");
        assert!(table_name("9lives", "v").starts_with("d9lives"));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}

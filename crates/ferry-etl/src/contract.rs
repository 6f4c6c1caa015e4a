//! A dataset's contract: what its README promises about the data. It is the fenced block
//! tagged `toml contract` in `datasets/<name>/README.md`:
//!
//! ````markdown
//! ```toml contract
//! max_reject_rate = 0.01   # this dataset's files fail above 1 % rejected rows
//!
//! [columns]                # typed columns, in this order
//! id = "bigint"
//! label = "text"
//! created_at = "timestamptz"
//! ```
//! ````
//!
//! Column types are those of the CSV mapping (`boolean`, `bigint`, `double precision`,
//! `date`, `timestamp`, `timestamptz`, `text`, and their aliases). In CSV and TSV files a
//! named column gets that type instead of an inferred one, and a file without it fails; JSON
//! records get a typed column per name, taken from the record's top-level key of that name
//! (a value that does not fit rejects the record). Parquet files carry their own types.

use serde::Deserialize;

use crate::csv::{Column, ColumnType};

/// Where a dataset's contract lives, under `datasets/<name>/`.
pub const README: &str = "README.md";

/// The info string that marks the contract's fenced block.
const TAG: &str = "contract";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contract {
    /// Typed columns, in the order the contract gives them.
    pub columns: Vec<Column>,
    /// Overrides the run's maximum share of rejected rows for this dataset's files.
    pub max_reject_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    columns: toml::Table,
    max_reject_rate: Option<f64>,
}

impl Contract {
    /// The contract in a README, if it has one. `Err` says what is wrong with it.
    pub fn from_readme(text: &str) -> Result<Option<Contract>, String> {
        let Some(block) = contract_block(text) else {
            return Ok(None);
        };
        let raw: Raw = toml::from_str(&block).map_err(|e| e.message().to_owned())?;
        if let Some(rate) = raw.max_reject_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("max_reject_rate is {rate}; it must be from 0 to 1"));
        }
        let columns = raw
            .columns
            .into_iter()
            .map(|(name, kind)| {
                check_column_name(&name)?;
                let kind = kind.as_str().and_then(ColumnType::parse).ok_or_else(|| {
                    format!(
                        "column {name:?}: {kind} is not a type ferry loads (boolean, \
                             bigint, double precision, date, timestamp, timestamptz, text)"
                    )
                })?;
                Ok(Column { name, kind })
            })
            .collect::<Result<_, String>>()?;
        Ok(Some(Contract {
            columns,
            max_reject_rate: raw.max_reject_rate,
        }))
    }
}

/// A name Postgres keeps as given and ferry does not use itself.
fn check_column_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(format!(
            "column {name:?}: a column name is 1 to 63 bytes, without NUL"
        ));
    }
    if name.starts_with("_ferry_") {
        return Err(format!(
            "column {name:?}: names starting with _ferry_ are ferry's own"
        ));
    }
    Ok(())
}

/// The body of the first fenced code block whose info string is `toml contract`.
fn contract_block(text: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some((fence, info)) = opening_fence(line) else {
            continue;
        };
        let mut words = info.split_whitespace();
        let tagged = words.next() == Some("toml") && words.any(|w| w == TAG);
        let mut body = String::new();
        for line in lines.by_ref() {
            let trimmed = line.trim_start();
            if trimmed.starts_with(&fence)
                && trimmed.trim_end().chars().all(|c| c == fence_char(&fence))
            {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        if tagged {
            return Some(body);
        }
    }
    None
}

/// A CommonMark opening fence (three or more backticks or tildes, indented at most three
/// spaces): the fence and the info string after it.
fn opening_fence(line: &str) -> Option<(String, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|x| *x == c).count();
    (len >= 3).then(|| (rest[..len].to_owned(), rest[len..].trim()))
}

fn fence_char(fence: &str) -> char {
    fence.chars().next().unwrap_or('`')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tagged_block_is_the_contract() {
        let readme = "# prices\n\n```toml\nnot = \"this one\"\n```\n\n\
            ````toml contract\nmax_reject_rate = 0.02\n[columns]\nid = \"bigint\"\n\
            at = \"timestamp with time zone\"\nlabel = \"TEXT\"\n````\n";
        let c = Contract::from_readme(readme).unwrap().unwrap();
        assert_eq!(c.max_reject_rate, Some(0.02));
        let cols: Vec<_> = c
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            cols,
            [
                ("id", ColumnType::Int64),
                ("at", ColumnType::TimestampTz),
                ("label", ColumnType::Text)
            ]
        );
    }

    #[test]
    fn no_block_is_no_contract_and_a_bad_one_is_an_error() {
        assert_eq!(
            Contract::from_readme("# notes\n```toml\na = 1\n```\n"),
            Ok(None)
        );
        let bad = |body: &str| {
            Contract::from_readme(&format!("```toml contract\n{body}\n```\n")).unwrap_err()
        };
        assert!(bad("[columns]\nid = \"uuid\"").contains("not a type ferry loads"));
        assert!(bad("max_reject_rate = 2.0").contains("from 0 to 1"));
        assert!(bad("colums = {}").contains("unknown field"));
        assert!(bad("[columns]\n_ferry_row = \"text\"").contains("ferry's own"));
        assert!(bad("[columns]\n\"\" = \"text\"").contains("1 to 63 bytes"));
        assert!(
            bad("[columns\n").contains("invalid"),
            "{}",
            bad("[columns\n")
        );
    }
}

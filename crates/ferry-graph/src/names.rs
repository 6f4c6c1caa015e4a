//! OneDrive's rules for file and folder names, checked before a request is sent so that the
//! error names the rule instead of coming back as a bare `invalidRequest`.

/// The longest drive path OneDrive accepts, in characters.
pub const MAX_PATH_CHARS: usize = 400;
/// The longest single name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

const FORBIDDEN_CHARS: &[char] = &['"', '*', ':', '<', '>', '?', '/', '\\', '|'];
const RESERVED_NAMES: &[&str] = &[".lock", "desktop.ini", "CON", "PRN", "AUX", "NUL"];

/// A name or path OneDrive would refuse, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("a name in {path:?} is empty")]
    Empty { path: String },
    #[error(
        "{name:?} contains {ch:?}; OneDrive forbids \" * : < > ? / \\ | and control characters"
    )]
    ForbiddenCharacter { name: String, ch: char },
    #[error(
        "{name:?} is a reserved name on OneDrive (CON, PRN, AUX, NUL, COM0-9, LPT0-9, .lock, desktop.ini)"
    )]
    ReservedName { name: String },
    #[error("{name:?} starts with \"~$\", which OneDrive reserves for Office lock files")]
    LockFilePrefix { name: String },
    #[error("{name:?} contains \"_vti_\", which SharePoint reserves")]
    VtiSegment { name: String },
    #[error("{name:?} starts or ends with a space, which OneDrive does not allow")]
    EdgeSpace { name: String },
    #[error("{name:?} ends with a period, which OneDrive does not allow")]
    TrailingPeriod { name: String },
    #[error("{name:?} is {chars} characters long; OneDrive allows {MAX_NAME_CHARS}")]
    NameTooLong { name: String, chars: usize },
    #[error("the path is {chars} characters long; OneDrive allows {MAX_PATH_CHARS}")]
    PathTooLong { chars: usize },
}

/// Checks one file or folder name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let owned = || name.to_owned();
    if name.is_empty() {
        return Err(NameError::Empty { path: owned() });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| FORBIDDEN_CHARS.contains(c) || c.is_control())
    {
        return Err(NameError::ForbiddenCharacter { name: owned(), ch });
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameError::NameTooLong {
            name: owned(),
            chars,
        });
    }
    if is_reserved(name) {
        return Err(NameError::ReservedName { name: owned() });
    }
    if name.starts_with("~$") {
        return Err(NameError::LockFilePrefix { name: owned() });
    }
    if name.contains("_vti_") {
        return Err(NameError::VtiSegment { name: owned() });
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(NameError::EdgeSpace { name: owned() });
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingPeriod { name: owned() });
    }
    Ok(())
}

/// A name OneDrive reserves (CON, PRN, AUX, NUL, COM0-9, LPT0-9, also with an extension;
/// `.lock`, `desktop.ini`), in any case.
pub fn is_reserved(name: &str) -> bool {
    // Device names are reserved with any extension too (`CON.txt`), in any case.
    let stem = name.split('.').next().unwrap_or(name);
    let device = |s: &str| {
        let upper = s.to_ascii_uppercase();
        RESERVED_NAMES[2..].contains(&upper.as_str())
            || ((upper.starts_with("COM") || upper.starts_with("LPT"))
                && upper.len() == 4
                && upper.as_bytes()[3].is_ascii_digit())
    };
    RESERVED_NAMES[..2]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
        || device(name)
        || device(stem)
}

/// Checks a drive path (`a/b/c.csv`, without a leading slash): every name, and the length.
pub fn check_path(path: &str) -> Result<(), NameError> {
    let chars = path.chars().count();
    if chars > MAX_PATH_CHARS {
        return Err(NameError::PathTooLong { chars });
    }
    for name in path.split('/') {
        if name.is_empty() {
            return Err(NameError::Empty {
                path: path.to_owned(),
            });
        }
        check_name(name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "train.csv",
            "2024-06-01",
            "model (v2).bin",
            "ünïcødé データ",
            ".hidden",
            "a.b.c",
        ] {
            check_name(name).unwrap();
        }
        check_path("datasets/market/2024-06-01/train.csv").unwrap();
    }

    type Expectation = fn(&NameError) -> bool;

    #[test]
    fn each_rule_is_named() {
        let cases: &[(&str, Expectation)] = &[
            ("a:b", |e| {
                matches!(e, NameError::ForbiddenCharacter { ch: ':', .. })
            }),
            ("a|b", |e| {
                matches!(e, NameError::ForbiddenCharacter { ch: '|', .. })
            }),
            ("tab\there", |e| {
                matches!(e, NameError::ForbiddenCharacter { ch: '\t', .. })
            }),
            ("CON", |e| matches!(e, NameError::ReservedName { .. })),
            ("con.txt", |e| matches!(e, NameError::ReservedName { .. })),
            ("LPT7", |e| matches!(e, NameError::ReservedName { .. })),
            ("desktop.ini", |e| {
                matches!(e, NameError::ReservedName { .. })
            }),
            (".lock", |e| matches!(e, NameError::ReservedName { .. })),
            ("~$report.docx", |e| {
                matches!(e, NameError::LockFilePrefix { .. })
            }),
            ("x_vti_y", |e| matches!(e, NameError::VtiSegment { .. })),
            (" lead", |e| matches!(e, NameError::EdgeSpace { .. })),
            ("trail ", |e| matches!(e, NameError::EdgeSpace { .. })),
            ("dot.", |e| matches!(e, NameError::TrailingPeriod { .. })),
        ];
        for (name, is_expected) in cases {
            let err = check_name(name).unwrap_err();
            assert!(is_expected(&err), "{name:?} gave {err:?}");
            assert!(err.to_string().contains("OneDrive") || err.to_string().contains("SharePoint"));
        }
        assert!(matches!(
            check_name(&"n".repeat(256)),
            Err(NameError::NameTooLong { chars: 256, .. })
        ));
        assert!(matches!(
            check_path(&"abcdefghi/".repeat(41)),
            Err(NameError::PathTooLong { .. })
        ));
        assert!(matches!(check_path("a//b"), Err(NameError::Empty { .. })));
        // Names that merely resemble reserved ones are fine.
        for name in ["CONSOLE", "COM10", "aux-data", "lpt"] {
            check_name(name).unwrap();
        }
    }
}

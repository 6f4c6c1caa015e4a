//! OneDrive / SharePoint naming rules. Violations are `400 invalidRequest` with a message
//! naming the rule.

const INVALID_CHARS: [char; 9] = ['"', '*', ':', '<', '>', '?', '/', '\\', '|'];
/// SharePoint also blocks these names outright.
const RESERVED_FILES: [&str; 2] = [".lock", "desktop.ini"];
const RESERVED_STEMS: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
/// The whole path (from the drive root) may be at most this many characters.
pub const MAX_PATH: usize = 400;

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("The name must not be empty.".into());
    }
    if name == "." || name == ".." {
        return Err(format!("The name '{name}' is not allowed."));
    }
    if let Some(c) = name
        .chars()
        .find(|c| INVALID_CHARS.contains(c) || c.is_control())
    {
        return Err(format!(
            "The name '{name}' contains the character '{}', which is not allowed. Names cannot contain \" * : < > ? / \\ | or control characters.",
            c.escape_default()
        ));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(format!(
            "The name '{name}' cannot begin or end with a space."
        ));
    }
    if name.ends_with('.') {
        return Err(format!("The name '{name}' cannot end with a period."));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_FILES.contains(&lower.as_str()) {
        return Err(format!("The name '{name}' is reserved and cannot be used."));
    }
    if lower.starts_with("~$") {
        return Err(format!("Names cannot begin with '~$': '{name}'."));
    }
    if lower.contains("_vti_") {
        return Err(format!("Names cannot contain '_vti_': '{name}'."));
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    let device = RESERVED_STEMS.contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return Err(format!(
            "The name '{name}' is reserved (CON, PRN, AUX, NUL, COM0-COM9 and LPT0-LPT9 cannot be used, with or without an extension)."
        ));
    }
    Ok(())
}

pub fn check_path_len(path: &str) -> Result<(), String> {
    if path.chars().count() > MAX_PATH {
        return Err(format!(
            "The path is {} characters long; the whole path must be at most {MAX_PATH} characters.",
            path.chars().count()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for ok in [
            "a",
            "a.txt",
            "Cone.d",
            "COMX",
            "LPT",
            ".gitignore",
            "a b",
            "console",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a:b",
            "a/b",
            "a\\b",
            "a|b",
            "a?",
            "a*",
            "<",
            ">",
            "\"",
            " a",
            "a ",
            "a.",
            "CON",
            "con.txt",
            "COM1",
            "lpt9.log",
            "COM0",
            ".lock",
            "desktop.ini",
            "Desktop.INI",
            "..",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_path_len(&"a".repeat(400)).is_ok());
        assert!(check_path_len(&"a".repeat(401)).is_err());
    }
}

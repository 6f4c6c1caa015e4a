//! S3 keys as OneDrive paths, and back: a reversible encoding of what OneDrive forbids.
//!
//! A key's `/`-separated segments become folder and file names. Each segment is encoded on
//! its own:
//!
//! | in the key | on the drive |
//! | --- | --- |
//! | `"` `*` `:` `<` `>` `?` `\` `\|` | their full-width forms `＂＊：＜＞？＼｜` |
//! | control characters U+0000–U+001F, U+007F | their pictures `␀`–`␟`, `␡` |
//! | control characters U+0080–U+009F | private-use U+F780–U+F79F |
//! | a space at the start or the end | `␠` |
//! | a period at the end | `．` |
//! | a reserved name (`CON`, `con.txt`, `LPT1`, `.lock`, `desktop.ini`, ...), a name starting with `~$`, a `_vti_` | the same, with `‛` before the first character (`‛CON`, `‛~$x`, `_‛vti_`) |
//! | an empty segment (`a//b`, a key starting with `/`) | `‛` |
//! | any of the characters on the right above, and `‛` itself | the same, with `‛` before it |
//!
//! Decoding undoes each row, so every key survives a round trip. One name is never the
//! encoding of a segment and is reserved: [`SELF_NAME`], the file holding the data of a key
//! that is also a folder (`a` while `a/b` exists: OneDrive cannot hold a file and a folder
//! of one name side by side). A name that a person gave
//! a file in OneDrive reads back as itself unless it holds one of the characters on the
//! right (then that character reads as what it stands for).

use ferry_graph::names::{MAX_NAME_CHARS, MAX_PATH_CHARS, is_reserved};

/// The file inside folder `a` that holds the data of key `a`.
pub const SELF_NAME: &str = "\u{201B}self";

/// Marks the next character as literal, and alone, an empty segment.
const ESCAPE: char = '\u{201B}';
/// Forbidden characters and what stands for them.
const SUBSTITUTES: [(char, char); 8] = [
    ('"', '\u{FF02}'),
    ('*', '\u{FF0A}'),
    (':', '\u{FF1A}'),
    ('<', '\u{FF1C}'),
    ('>', '\u{FF1E}'),
    ('?', '\u{FF1F}'),
    ('\\', '\u{FF3C}'),
    ('|', '\u{FF5C}'),
];
const EDGE_SPACE: char = '\u{2420}';
const TRAILING_PERIOD: char = '\u{FF0E}';
const DELETE_PICTURE: char = '\u{2421}';
/// C1 controls (U+0080–U+009F) stand as private-use characters from here.
const C1_BASE: u32 = 0xF780;
const C1_LAST: u32 = C1_BASE + 0x1F;

/// A key that has no OneDrive path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "a name in the key becomes {chars} characters on OneDrive, which allows {MAX_NAME_CHARS}"
    )]
    NameTooLong { chars: usize },
    #[error("the key becomes a drive path of {chars} characters; OneDrive allows {MAX_PATH_CHARS}")]
    PathTooLong { chars: usize },
}

/// The drive name for one segment of a key.
pub fn encode_segment(segment: &str) -> Result<String, KeyError> {
    if segment.is_empty() {
        return Ok(ESCAPE.to_string());
    }
    let chars: Vec<char> = segment.chars().collect();
    let mut out = String::with_capacity(segment.len() + 4);
    let last = chars.len() - 1;
    let guarded = guarded_positions(segment, &chars);
    for (i, &c) in chars.iter().enumerate() {
        if guarded.contains(&i) {
            out.push(ESCAPE);
            out.push(c);
            continue;
        }
        match c {
            ' ' if i == 0 || i == last => out.push(EDGE_SPACE),
            '.' if i == last => out.push(TRAILING_PERIOD),
            c if needs_escape(c) => {
                out.push(ESCAPE);
                out.push(c);
            }
            c => out.push(substitute(c).unwrap_or(c)),
        }
    }
    let chars = out.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(KeyError::NameTooLong { chars });
    }
    Ok(out)
}

/// The key segment a drive name stands for.
pub fn decode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            ESCAPE => out.extend(chars.next()),
            EDGE_SPACE => out.push(' '),
            TRAILING_PERIOD => out.push('.'),
            c => out.push(original(c).unwrap_or(c)),
        }
    }
    out
}

/// The drive path (relative to the bucket's folder) for a key.
pub fn encode_key(key: &str) -> Result<String, KeyError> {
    let path = key
        .split('/')
        .map(encode_segment)
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    let chars = path.chars().count();
    if chars > MAX_PATH_CHARS {
        return Err(KeyError::PathTooLong { chars });
    }
    Ok(path)
}

/// The key for a drive path (relative to the bucket's folder).
pub fn decode_path(path: &str) -> String {
    path.split('/')
        .map(decode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Where `‛` goes so that OneDrive sees no reserved name, `~$` lock-file prefix or `_vti_`
/// (before the first character, and before the `v` of every `_vti_`, overlapping ones too).
fn guarded_positions(segment: &str, chars: &[char]) -> Vec<usize> {
    let mut at = Vec::new();
    if segment.starts_with("~$") || is_reserved(segment) {
        at.push(0);
    }
    let vti = ['_', 'v', 't', 'i', '_'];
    at.extend(
        chars
            .windows(vti.len())
            .enumerate()
            .filter(|(_, w)| *w == vti)
            .map(|(i, _)| i + 1),
    );
    at
}

fn substitute(c: char) -> Option<char> {
    if let Some(&(_, s)) = SUBSTITUTES.iter().find(|(f, _)| *f == c) {
        return Some(s);
    }
    match c as u32 {
        0x00..=0x1F => char::from_u32(0x2400 + c as u32),
        0x7F => Some(DELETE_PICTURE),
        0x80..=0x9F => char::from_u32(C1_BASE + c as u32 - 0x80),
        _ => None,
    }
}

fn original(c: char) -> Option<char> {
    if let Some(&(f, _)) = SUBSTITUTES.iter().find(|(_, s)| *s == c) {
        return Some(f);
    }
    match c as u32 {
        0x2400..=0x241F => char::from_u32(c as u32 - 0x2400),
        n @ C1_BASE..=C1_LAST => char::from_u32(n - C1_BASE + 0x80),
        _ if c == DELETE_PICTURE => Some('\u{7F}'),
        _ => None,
    }
}

/// A character that would decode as something else: it is written with `‛` before it.
fn needs_escape(c: char) -> bool {
    c == ESCAPE || c == EDGE_SPACE || c == TRAILING_PERIOD || original(c).is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_keys_are_their_own_paths() {
        for key in [
            "datasets/train.csv",
            "a/b c/d-e_f.tar.gz",
            "日本語/データ（１）.csv",
        ] {
            assert_eq!(encode_key(key).unwrap(), key);
            assert_eq!(decode_path(key), key);
        }
    }

    #[test]
    fn what_onedrive_forbids_is_encoded_as_documented() {
        let cases = [
            ("a:b?.txt", "a：b？.txt"),
            ("CON", "‛CON"),
            ("con.txt", "‛con.txt"),
            ("lpt9.log", "‛lpt9.log"),
            (".lock", "‛.lock"),
            ("~$doc.docx", "‛~$doc.docx"),
            ("x_vti_y", "x_‛vti_y"),
            (" lead", "␠lead"),
            ("trail ", "trail␠"),
            ("dots..", "dots.．"),
            ("tab\there", "tab␉here"),
            ("", "‛"),
            ("‛", "‛‛"),
            ("：", "‛："),
            ("␠", "‛␠"),
        ];
        for (segment, name) in cases {
            assert_eq!(encode_segment(segment).unwrap(), name, "{segment:?}");
            assert_eq!(decode_segment(name), segment, "{name:?}");
        }
        assert_eq!(encode_key("a//b/").unwrap(), "a/‛/b/‛");
    }

    #[test]
    fn limits_are_errors() {
        let long = "x".repeat(256);
        assert_eq!(
            encode_segment(&long),
            Err(KeyError::NameTooLong { chars: 256 })
        );
        let deep = ["abcdefghij"; 40].join("/");
        assert!(matches!(
            encode_key(&deep),
            Err(KeyError::PathTooLong { chars: 439 })
        ));
    }

    fn segment() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("CON".to_owned()),
            Just("~$".to_owned()),
            Just("_vti_".to_owned()),
            Just("vti_".to_owned()),
            Just(".lock".to_owned()),
            Just("desktop.ini".to_owned()),
            Just(".".to_owned()),
            Just(" ".to_owned()),
            Just("‛".to_owned()),
            Just("：".to_owned()),
            Just("␠".to_owned()),
            Just("．".to_owned()),
            Just("self".to_owned()),
            Just("␀".to_owned()),
            "[a-zA-Z0-9\"*:<>?\\\\|\\x00-\\x1f\\x7f-\\u{9f}\\u{f780}-\\u{f79f} .~$_-]{1,4}",
            "\\PC{1,3}",
        ];
        proptest::collection::vec(pieces, 0..6).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn every_segment_round_trips_to_a_name_onedrive_accepts(s in segment()) {
            prop_assume!(s.chars().count() < 100 && !s.contains('/'));
            let name = encode_segment(&s).unwrap();
            prop_assert_eq!(decode_segment(&name), s.clone());
            prop_assert_ne!(name.as_str(), SELF_NAME);
            if !s.is_empty() {
                prop_assert!(ferry_graph::check_name(&name).is_ok(), "{:?} -> {:?}", s, name);
            }
        }
    }
}

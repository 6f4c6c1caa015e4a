//! Parses Graph paths, including OneDrive's colon path syntax
//! (`/drive/root:/a/b:/children`, `/drive/items/{id}:/name:/content`).

use super::error::GraphError;
use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq)]
pub enum DriveSel {
    Me,
    Id(String),
    User(String),
    Site(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Owner {
    Me,
    User(String),
    Site(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    Root,
    Id(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Me,
    User(String),
    Drives(Owner),
    Drive(DriveSel),
    Item {
        drive: DriveSel,
        base: Base,
        /// Decoded path segments after `:` (relative to `base`).
        path: Vec<String>,
        action: Option<String>,
    },
}

impl DriveSel {
    /// Prefix used in `parentReference.path`: `/drive` or `/drives/{id}`.
    pub fn path_prefix(&self, drive_id: &str) -> String {
        match self {
            DriveSel::Me => "/drive".into(),
            _ => format!("/drives/{drive_id}"),
        }
    }
}

fn decode(s: &str) -> Result<String, GraphError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| GraphError::invalid("The path is not valid UTF-8 after percent-decoding."))
}

fn unknown(segment: &str) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
}

/// Splits `s` at the first `/`: (segment, rest-after-slash-or-empty).
fn head(s: &str) -> (&str, &str) {
    match s.split_once('/') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    }
}

pub fn parse(raw_path: &str) -> Result<Target, GraphError> {
    let s = raw_path
        .strip_prefix("/v1.0/")
        .unwrap_or(raw_path)
        .trim_end_matches('/');
    let (first, rest) = head(s);
    let (drive, rest) = match first {
        "me" => {
            let (second, rest) = head(rest);
            match second {
                "" => return Ok(Target::Me),
                "drive" => (DriveSel::Me, rest),
                "drives" => return Ok(Target::Drives(Owner::Me)),
                other => return Err(unknown(other)),
            }
        }
        "drive" => (DriveSel::Me, rest),
        "drives" => {
            let (id, rest) = head(rest);
            (DriveSel::Id(decode(id)?), rest)
        }
        "users" | "sites" => {
            let (id, rest) = head(rest);
            let id = decode(id)?;
            let (second, rest) = head(rest);
            match (first, second) {
                ("users", "") => return Ok(Target::User(id)),
                ("users", "drive") => (DriveSel::User(id), rest),
                ("users", "drives") => return Ok(Target::Drives(Owner::User(id))),
                ("sites", "drive") => (DriveSel::Site(id), rest),
                ("sites", "drives") => return Ok(Target::Drives(Owner::Site(id))),
                (_, other) => return Err(unknown(other)),
            }
        }
        other => return Err(unknown(other)),
    };
    if rest.is_empty() {
        return Ok(Target::Drive(drive));
    }
    let (base, mut r) = if let Some(r) = rest.strip_prefix("root") {
        if !(r.is_empty() || r.starts_with([':', '/'])) {
            return Err(unknown(rest));
        }
        (Base::Root, r)
    } else if let Some(r) = rest.strip_prefix("items/") {
        let end = r.find([':', '/']).unwrap_or(r.len());
        (Base::Id(decode(&r[..end])?), &r[end..])
    } else {
        return Err(unknown(head(rest).0));
    };
    let mut path = Vec::new();
    if let Some(after) = r.strip_prefix(':') {
        let (p, tail) = match after.find(':') {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, ""),
        };
        for seg in p.split('/').filter(|s| !s.is_empty()) {
            path.push(decode(seg)?);
        }
        r = tail;
    }
    let action = match r.strip_prefix('/') {
        Some(a) if !a.is_empty() => Some(a.to_string()),
        _ if r.is_empty() || r == "/" => None,
        _ => return Err(unknown(r)),
    };
    Ok(Target::Item {
        drive,
        base,
        path,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(drive: DriveSel, base: Base, path: &[&str], action: Option<&str>) -> Target {
        Target::Item {
            drive,
            base,
            path: path.iter().map(|s| s.to_string()).collect(),
            action: action.map(str::to_string),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/v1.0/me").ok(), Some(Target::Me));
        assert_eq!(
            parse("/v1.0/me/drive").ok(),
            Some(Target::Drive(DriveSel::Me))
        );
        assert_eq!(
            parse("/v1.0/drives/b!x").ok(),
            Some(Target::Drive(DriveSel::Id("b!x".into())))
        );
        assert_eq!(
            parse("/v1.0/me/drive/root").ok(),
            Some(item(DriveSel::Me, Base::Root, &[], None))
        );
        assert_eq!(
            parse("/v1.0/me/drive/root:/a%20b/c:/children").ok(),
            Some(item(
                DriveSel::Me,
                Base::Root,
                &["a b", "c"],
                Some("children")
            ))
        );
        assert_eq!(
            parse("/v1.0/drive/root:/a/b").ok(),
            Some(item(DriveSel::Me, Base::Root, &["a", "b"], None))
        );
        assert_eq!(
            parse("/v1.0/drives/d/items/X%21101:/f.txt:/content").ok(),
            Some(item(
                DriveSel::Id("d".into()),
                Base::Id("X!101".into()),
                &["f.txt"],
                Some("content")
            ))
        );
        assert_eq!(
            parse("/v1.0/users/u1/drive/items/abc/createUploadSession").ok(),
            Some(item(
                DriveSel::User("u1".into()),
                Base::Id("abc".into()),
                &[],
                Some("createUploadSession")
            ))
        );
        assert_eq!(
            parse("/v1.0/sites/s/drive/root/delta").ok(),
            Some(item(
                DriveSel::Site("s".into()),
                Base::Root,
                &[],
                Some("delta")
            ))
        );
        assert!(parse("/v1.0/bogus").is_err());
        assert!(parse("/v1.0/me/drive/rootx").is_err());
    }
}

//! Drive and item id formats: personal drives use 16 hex digits and `DRIVE!n` item ids,
//! business drives `b!...` drive ids and 34-character `01...` item ids, like the real
//! services (clients must treat all of them as opaque).

use sha2::Digest as _;

use crate::config::DriveType;

pub fn drive_id(drive_type: DriveType, seed: &str) -> String {
    let h = sha2::Sha256::digest(format!("ferry-emulator-drive:{seed}").as_bytes());
    match drive_type {
        DriveType::Personal => hex::encode(&h[..8]),
        _ => {
            let h2 = sha2::Sha256::digest(h);
            let mut bytes = h.to_vec();
            bytes.extend_from_slice(&h2);
            let s = crate::util::b64url(&bytes);
            format!("b!{}", &s[..64])
        }
    }
}

pub fn root_id(drive_type: DriveType, drive_id: &str) -> String {
    match drive_type {
        DriveType::Personal => format!("{}!101", drive_id.to_uppercase()),
        _ => format!("01{}", &base32(&crate::util::random_bytes::<20>())[..32]),
    }
}

pub fn item_id(drive_type: DriveType, drive_id: &str, counter: u64) -> String {
    match drive_type {
        DriveType::Personal => format!("{}!{counter}", drive_id.to_uppercase()),
        _ => format!("01{}", &base32(&crate::util::random_bytes::<20>())[..32]),
    }
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(drive_id(DriveType::Personal, "u").len(), 16);
        assert!(drive_id(DriveType::Business, "u").starts_with("b!"));
        assert_eq!(drive_id(DriveType::Business, "u").len(), 66);
        assert_eq!(item_id(DriveType::Business, "x", 1).len(), 34);
        assert_eq!(item_id(DriveType::Personal, "abc", 7), "ABC!7");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }
}

//! Range headers as clients send them, through s3s's parser and ours, to byte ranges.

use proptest::prelude::*;
use s3s::dto::Range;

use super::objects::range_request;

fn resolve(header: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let parsed = Range::parse(header).ok()?;
    range_request(Some(&parsed))?.resolve(size)
}

#[test]
fn the_three_forms_and_the_unsatisfiable() {
    assert_eq!(resolve("bytes=2-4", 10), Some(2..5));
    assert_eq!(resolve("bytes=7-", 10), Some(7..10));
    assert_eq!(resolve("bytes=-3", 10), Some(7..10));
    assert_eq!(resolve("bytes=8-100", 10), Some(8..10));
    assert_eq!(resolve("bytes=-100", 10), Some(0..10));
    assert_eq!(resolve("bytes=10-", 10), None);
    assert_eq!(resolve("bytes=-0", 10), None);
    assert!(Range::parse("bytes=4-2").is_err() || resolve("bytes=4-2", 10).is_none());
    assert!(Range::parse("items=0-1").is_err());
    assert!(Range::parse("bytes=abc").is_err());
}

proptest! {
    #[test]
    fn any_int_range_header_selects_what_it_says(first in 0u64..1000, len in 0u64..1000, size in 1u64..1000) {
        let last = first + len;
        let got = resolve(&format!("bytes={first}-{last}"), size);
        let expected = (first < size).then(|| first..(last + 1).min(size));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn any_suffix_header_selects_the_tail(length in 1u64..2000, size in 1u64..1000) {
        let got = resolve(&format!("bytes=-{length}"), size);
        prop_assert_eq!(got, Some(size.saturating_sub(length)..size));
    }

    #[test]
    fn arbitrary_headers_never_panic(header in "\\PC{0,30}") {
        let _ = resolve(&header, 100);
    }
}

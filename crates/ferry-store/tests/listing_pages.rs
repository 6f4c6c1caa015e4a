//! Property: any sequence of page sizes, with or without a delimiter and prefix, yields
//! exactly the listing an in-memory model gives, each entry once.

use std::collections::BTreeSet;

use ferry_store::{Backend, BackendExt, ListEntry, ListOptions, LocalBackend, ObjectAttrs};
use proptest::prelude::*;

/// What S3 returns for these keys: sorted, filtered by prefix, rolled up at the delimiter.
fn model(keys: &BTreeSet<String>, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        let entry = match delimiter {
            Some(d) => match key[prefix.len()..].find(d) {
                Some(i) => key[..prefix.len() + i + d.len()].to_owned(),
                None => key.clone(),
            },
            None => key.clone(),
        };
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

fn key_strategy() -> impl Strategy<Value = String> {
    // Few distinct characters, so keys share prefixes and collide with folder names.
    proptest::collection::vec(prop_oneof!["a", "b", "-", ".", "/", "0", "é"], 1..8)
        .prop_map(|parts| parts.concat())
        .prop_filter("valid key", |k| ferry_store::check_key(k).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pages_concatenate_to_the_model(
        keys in proptest::collection::btree_set(key_strategy(), 1..40),
        pages in proptest::collection::vec(1usize..6, 1..20),
        delimiter in prop_oneof![Just(None), Just(Some("/")), Just(Some("-"))],
        prefix in prop_oneof![Just(""), Just("a"), Just("a/"), Just("b")],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let backend = LocalBackend::open(dir.path()).unwrap();
            backend.create_bucket("bucket").await.unwrap();
            for key in &keys {
                backend.put_bytes("bucket", key, key.clone(), ObjectAttrs::default()).await.unwrap();
            }
            let mut listed = Vec::new();
            let mut start_after = None;
            for max_keys in pages.iter().cycle() {
                let opts = ListOptions {
                    prefix: prefix.to_owned(),
                    delimiter: delimiter.map(str::to_owned),
                    start_after: start_after.clone(),
                    max_keys: *max_keys,
                };
                let page = backend.list("bucket", &opts).await.unwrap();
                assert!(page.entries.len() <= *max_keys);
                listed.extend(page.entries.iter().map(|e| e.name().to_owned()));
                if !page.is_truncated {
                    break;
                }
                start_after = page.entries.last().map(|e: &ListEntry| e.name().to_owned());
            }
            assert_eq!(listed, model(&keys, prefix, delimiter));
        });
    }
}

//! The sync engine from a local folder into a real Postgres.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_etl::engine::lock_key;
use ferry_etl::{Error, Options, sync};

const PRICES: &str = "\
id,price,active,day,at,at_utc,note
1,10.5,true,2024-06-01,2024-06-01 09:30:00,2024-06-01T09:30:00Z,first
2,-3,false,2024-06-02,2024-06-02 10:00:00.25,2024-06-02T12:00:00+02:00,\"with, comma\"
3,,,,,,
";

#[tokio::test]
async fn csv_types_round_trip_and_a_second_run_changes_nothing() {
    let mut env = start().await;
    env.write("datasets/market/2024-06-01/prices.csv", PRICES);
    env.write("datasets/market/2024-06-01/README.md", "# market\n");
    env.write("reports/q1.csv", "a\n1\n");
    let report = env.sync().await;
    assert_eq!(report.status, "succeeded", "{report:#?}");
    assert_eq!((report.files_seen, report.files_loaded), (1, 1));
    assert_eq!((report.rows_loaded, report.rows_rejected), (3, 0));
    let table = table_of(&report, "datasets/market/2024-06-01/prices.csv");
    assert!(
        table.starts_with("ai_raw_csv.market__2024_06_01"),
        "{table}"
    );
    let types: Vec<String> = env
        .client
        .query(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 2 ORDER BY attnum",
            &[&format!(
                "ai_raw_csv.\"{}\"",
                table.split_once('.').unwrap().1
            )],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types,
        [
            "bigint",
            "double precision",
            "boolean",
            "date",
            "timestamp without time zone",
            "timestamp with time zone",
            "text"
        ]
    );
    env.client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .unwrap();
    let rows = env
        .rows(
            &table,
            "_ferry_row::text, id::text, price::text, active::text, day::text, at::text, at_utc::text, note",
        )
        .await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows,
        vec![
            vec![
                s("1"),
                s("1"),
                s("10.5"),
                s("true"),
                s("2024-06-01"),
                s("2024-06-01 09:30:00"),
                s("2024-06-01 09:30:00+00"),
                s("first")
            ],
            vec![
                s("2"),
                s("2"),
                s("-3"),
                s("false"),
                s("2024-06-02"),
                s("2024-06-02 10:00:00.25"),
                s("2024-06-02 10:00:00+00"),
                s("with, comma")
            ],
            vec![s("3"), s("3"), None, None, None, None, None, s("")],
        ]
    );

    // Nothing changed: nothing loaded, nothing duplicated.
    let again = env.sync().await;
    assert_eq!((again.files_seen, again.files_loaded), (1, 0));
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM {}", quoted(&table)))
            .await,
        3
    );
    assert_eq!(
        env.count("SELECT count(*) FROM ferry.etl_runs WHERE status = 'succeeded'")
            .await,
        2
    );
    let manifest: serde_json::Value = env
        .client
        .query_one(
            "SELECT manifest FROM ferry.etl_runs ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(manifest["manifest_version"], 1);
    let published: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.root.path().join("etl-staging/manifests/run-1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        published["run_id"], 1,
        "the manifest is published beside the data"
    );
    assert_eq!(manifest["files"][0]["rows_loaded"], 3);
    assert_eq!(
        manifest["files"][0]["schema"][1]["type"],
        "double precision"
    );
    assert_eq!(manifest["files"][0]["sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn edits_renames_moves_and_deletes_between_runs() {
    let mut env = start().await;
    env.write("datasets/d/v1/a.csv", "x,y\n1,a\n2,b\n");
    env.write("datasets/d/v1/b.csv", "x,y\n3,c\n");
    let first = env.sync().await;
    assert_eq!(first.files_loaded, 2);
    let table = quoted(&table_of(&first, "datasets/d/v1/a.csv"));

    // Edited: its rows are replaced, not added to.
    env.write("datasets/d/v1/a.csv", "x,y\n10,changed\n");
    // Renamed within the version: recorded, not loaded again.
    std::fs::rename(
        env.root.path().join("datasets/d/v1/b.csv"),
        env.root.path().join("datasets/d/v1/b2.csv"),
    )
    .unwrap();
    // A new file.
    env.write("datasets/d/v1/c.csv", "x,y\n4,d\n");
    let second = env.sync().await;
    assert_eq!(second.files_loaded, 2, "{second:#?}");
    let statuses: Vec<(&str, &str)> = second
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status))
        .collect();
    assert!(
        statuses.contains(&("datasets/d/v1/b2.csv", "renamed")),
        "{statuses:?}"
    );
    let rows = env.rows(&table.replace('"', ""), "x::text, y").await;
    let mut values: Vec<String> = rows.iter().map(|r| r[1].clone().unwrap()).collect();
    values.sort();
    assert_eq!(values, ["c", "changed", "d"]);

    // Deleted: a tombstone; the rows stay (nothing is dropped silently).
    std::fs::remove_file(env.root.path().join("datasets/d/v1/c.csv")).unwrap();
    let third = env.sync().await;
    assert!(
        third
            .files
            .iter()
            .any(|f| f.path == "datasets/d/v1/c.csv" && f.status == "deleted"),
        "{third:#?}"
    );
    assert_eq!(env.count(&format!("SELECT count(*) FROM {table}")).await, 3);
    assert_eq!(
        env.count("SELECT count(*) FROM ferry.onedrive_ingest WHERE status = 'deleted'")
            .await,
        1
    );
    // Moved to another version: loaded into that version's table.
    std::fs::create_dir_all(env.root.path().join("datasets/d/v2")).unwrap();
    std::fs::rename(
        env.root.path().join("datasets/d/v1/b2.csv"),
        env.root.path().join("datasets/d/v2/b2.csv"),
    )
    .unwrap();
    let fourth = env.sync().await;
    assert_eq!(fourth.files_loaded, 1, "{fourth:#?}");
    let v2 = quoted(&table_of(&fourth, "datasets/d/v2/b2.csv"));
    assert_ne!(v2, table);
    assert_eq!(env.count(&format!("SELECT count(*) FROM {v2}")).await, 1);
    // And back: that version is in v1's table already, so it is only recorded.
    std::fs::rename(
        env.root.path().join("datasets/d/v2/b2.csv"),
        env.root.path().join("datasets/d/v1/b3.csv"),
    )
    .unwrap();
    let fifth = env.sync().await;
    assert_eq!(
        (fifth.files_loaded, fifth.files_failed),
        (0, 0),
        "{fifth:#?}"
    );
    assert!(
        fifth
            .files
            .iter()
            .any(|f| f.path == "datasets/d/v1/b3.csv" && f.status == "renamed")
    );
    assert_eq!(env.count(&format!("SELECT count(*) FROM {table}")).await, 3);
}

#[tokio::test]
async fn hard_links_are_separate_files() {
    let mut env = start().await;
    env.write("datasets/d/v1/a.csv", "x\n1\n2\n");
    std::fs::create_dir_all(env.root.path().join("datasets/d/v2")).unwrap();
    std::fs::hard_link(
        env.root.path().join("datasets/d/v1/a.csv"),
        env.root.path().join("datasets/d/v2/a.csv"),
    )
    .unwrap();
    let first = env.sync().await;
    assert_eq!(first.files_loaded, 2, "{first:#?}");
    let again = env.sync().await;
    assert_eq!(
        (again.files_loaded, again.files_failed),
        (0, 0),
        "{again:#?}"
    );
    assert_eq!(again.status, "succeeded");
}

#[tokio::test]
async fn bad_rows_are_rejected_and_a_mostly_bad_file_fails_alone() {
    let mut env = start().await;
    // Lines 2-41 good, 42 ragged, 43-53 good.
    let mut messy = b"id,amount\n".to_vec();
    for i in 0..40 {
        messy.extend_from_slice(format!("{i},{}\n", i * 10).as_bytes());
    }
    messy.extend_from_slice(b"40,20,extra\n41,410\n");
    for i in 42..52 {
        messy.extend_from_slice(format!("{i},{}\n", i * 10).as_bytes());
    }
    let mut bad_utf8 = b"id,name\n".to_vec();
    for i in 0..20 {
        bad_utf8.extend_from_slice(format!("{i},ok\n").as_bytes());
    }
    bad_utf8.extend_from_slice(b"99,\xff\xfe\n");
    env.write("datasets/m/v1/messy.csv", &messy);
    env.write("datasets/n/v1/names.csv", &bad_utf8);
    // The version's table says bigint (from messy.csv): "abc" on line 22 is rejected; line
    // 23 opens a quote that never closes.
    let mut more = b"id,amount\n".to_vec();
    for i in 0..20 {
        more.extend_from_slice(format!("{},1\n", 100 + i).as_bytes());
    }
    more.extend_from_slice(b"200,abc\n201,\"unterminated\n");
    env.write("datasets/m/v1/more.csv", &more);
    // More than 10% bad: this file fails, the others load.
    env.write("datasets/m/v2/broken.csv", "a,b\n1,2\nx\ny\nz\n");
    env.write("datasets/m/v3/ok.csv", "a\n1\n");
    let report = env.sync().await;
    assert_eq!(report.status, "partial", "{report:#?}");
    assert_eq!(
        (report.files_loaded, report.files_failed),
        (4, 1),
        "{report:#?}"
    );
    let reasons: Vec<(String, i64, String)> = env
        .client
        .query(
            "SELECT path, line, reason FROM ferry.etl_rejects ORDER BY path, line",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let for_file = |p: &str| -> Vec<(i64, String)> {
        reasons
            .iter()
            .filter(|(path, ..)| path.ends_with(p))
            .map(|(_, line, reason)| (*line, reason.clone()))
            .collect()
    };
    let messy_rejects = for_file("messy.csv");
    assert!(
        messy_rejects
            .iter()
            .any(|(l, r)| *l == 42 && r.contains("fields")),
        "{messy_rejects:?}"
    );
    let more_rejects = for_file("more.csv");
    assert!(
        more_rejects
            .iter()
            .any(|(l, r)| *l == 22 && r.contains("abc")),
        "{more_rejects:?}"
    );
    assert!(
        more_rejects
            .iter()
            .any(|(l, r)| *l == 23 && r.contains("quote")),
        "{more_rejects:?}"
    );
    let names = for_file("names.csv");
    assert!(
        names.iter().any(|(l, r)| *l == 22 && r.contains("UTF-8")),
        "{names:?}"
    );
    assert!(
        !for_file("broken.csv").is_empty(),
        "a failed file keeps its first rejects"
    );
    let failed: (String, String) = env
        .client
        .query_one(
            "SELECT path, error FROM ferry.onedrive_ingest WHERE status = 'failed'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(failed.0, "datasets/m/v2/broken.csv");
    assert!(failed.1.contains("rejected"), "{}", failed.1);
    let table = quoted(&table_of(&report, "datasets/m/v2/broken.csv"));
    let exists: Option<String> = env
        .client
        .query_one(
            &format!("SELECT to_regclass('{}')::text", table.replace('\'', "''")),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        exists.is_none(),
        "the failed file's rows (and table) were rolled back"
    );
    // The failed version is not retried until it changes.
    let again = env.sync().await;
    assert_eq!(
        (again.files_loaded, again.files_failed),
        (0, 0),
        "{again:#?}"
    );
}

#[tokio::test]
async fn a_second_sync_of_the_same_source_is_refused_while_one_runs() {
    let mut env = start().await;
    env.write("datasets/d/v1/a.csv", "x\n1\n");
    let source = env.source();
    let other = env.db.client().await;
    let key = lock_key(&source.name());
    other
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let err = sync(&mut env.client, &source, &Options::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert!(err.to_string().contains("another sync"), "{err}");
    other
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    assert_eq!(env.sync().await.files_loaded, 1);
}

#[tokio::test]
async fn schema_drift_between_versions_is_reported() {
    let mut env = start().await;
    env.write("datasets/d/v1/a.csv", "x,y\n1,a\n");
    assert!(env.sync().await.files.iter().all(|f| f.drift.is_none()));
    env.write("datasets/d/v2/a.csv", "x,z\nnot a number,2\n");
    let report = env.sync().await;
    assert_eq!(report.schema_drift, 1, "{report:#?}");
    let drift = report.files[0].drift.as_ref().unwrap();
    assert_eq!(drift.previous_table, "ai_raw_csv.d__v1");
    let names = |cols: &[ferry_etl::load::ColumnInfo]| {
        cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&drift.added), ["z"]);
    assert_eq!(names(&drift.removed), ["y"]);
    assert_eq!(
        drift.retyped,
        [("x".to_owned(), "bigint".to_owned(), "text".to_owned())]
    );
    let manifest: serde_json::Value = env
        .client
        .query_one(
            "SELECT manifest FROM ferry.etl_runs ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(manifest["files"][0]["drift"]["added"][0]["name"], "z");
}

#[tokio::test]
async fn a_100_mb_line_and_odd_names_are_handled() {
    let mut env = start().await;
    // One record of 100 MB among good ones: rejected without holding it, the rest loads.
    let mut big = b"id,text\n".to_vec();
    for i in 0..20 {
        big.extend_from_slice(format!("{i},ok\n").as_bytes());
    }
    big.extend_from_slice(b"20,");
    big.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    big.extend_from_slice(b"\n21,after\n");
    env.write("datasets/big/v1/long.csv", &big);
    // Every character OneDrive allows in a name that a shell or SQL might trip on.
    let odd = "datasets/Mär kt #1 (v)/2024-06-01 {a}&b'c/prï ce%s;=@[x]~+,😀.csv";
    env.write(odd, "a\n1\n");
    let report = env.sync().await;
    assert_eq!(
        (report.files_loaded, report.files_failed),
        (2, 0),
        "{report:#?}"
    );
    let long = report
        .files
        .iter()
        .find(|f| f.path.ends_with("long.csv"))
        .unwrap();
    assert_eq!((long.rows_loaded, long.rows_rejected), (21, 1));
    let reason: String = env
        .client
        .query_one(
            "SELECT reason FROM ferry.etl_rejects WHERE path LIKE '%long.csv'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("longer than"), "{reason}");
    let odd_table = table_of(&report, odd);
    assert_eq!(
        env.count(&format!("SELECT count(*) FROM {}", quoted(&odd_table)))
            .await,
        1
    );
    let path: String = env
        .client
        .query_one(
            "SELECT path FROM ferry.onedrive_ingest WHERE path LIKE '%😀%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, odd, "the path is recorded as it is");
}

#[tokio::test]
async fn an_emptied_unlogged_table_is_loaded_again() {
    let mut env = start().await;
    env.write("datasets/d/v1/a.csv", "x\n1\n2\n");
    let first = env.sync().await;
    let table = quoted(&table_of(&first, "datasets/d/v1/a.csv"));
    // What a Postgres crash does to an unlogged table.
    env.client
        .batch_execute(&format!("TRUNCATE {table}"))
        .await
        .unwrap();
    let again = env.sync().await;
    assert_eq!(again.files_loaded, 1, "{again:#?}");
    assert_eq!(env.count(&format!("SELECT count(*) FROM {table}")).await, 2);
    // And a table dropped by hand.
    env.client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
    assert_eq!(env.sync().await.files_loaded, 1);
    assert_eq!(env.count(&format!("SELECT count(*) FROM {table}")).await, 2);
}

#[tokio::test]
async fn a_file_restored_to_an_earlier_version_is_loaded_again() {
    let mut env = start().await;
    let path = "datasets/r/v1/a.csv";
    let full = env.root.path().join(path);
    env.write(path, "x\n1\n");
    let first_seen = std::fs::metadata(&full).unwrap().modified().unwrap();
    env.sync().await;
    env.write(path, "x\n2\n");
    let second = env.sync().await;
    assert_eq!(second.files_loaded, 1);
    // Restored with its old bytes and time (a backup, `cp -p`): the same version as the
    // first, which must come back into the table.
    env.write(path, "x\n1\n");
    std::fs::File::options()
        .write(true)
        .open(&full)
        .unwrap()
        .set_modified(first_seen)
        .unwrap();
    let third = env.sync().await;
    assert_eq!(third.files_loaded, 1, "{third:#?}");
    let table = table_of(&third, path);
    assert_eq!(env.rows(&table, "x::text").await, [[Some("1".to_owned())]]);
    let statuses: Vec<String> = env
        .client
        .query(
            "SELECT status FROM ferry.onedrive_ingest WHERE path = $1 ORDER BY id",
            &[&path],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, ["replaced", "replaced", "loaded"]);
    // Nothing changed since: nothing loads.
    assert_eq!(env.sync().await.files_loaded, 0);
}

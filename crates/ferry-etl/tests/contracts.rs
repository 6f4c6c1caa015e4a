//! Dataset contracts (the `toml contract` block of `datasets/<name>/README.md`): typed
//! columns for CSV and JSON, a per-dataset reject rate, and a broken contract that holds
//! its files back until it is mended.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn readme(contract: &str) -> String {
    format!("# A dataset\n\nWhat it holds.\n\n```toml contract\n{contract}\n```\n")
}

fn file<'r>(report: &'r ferry_etl::Report, path: &str) -> &'r ferry_etl::engine::FileReport {
    report.files.iter().find(|f| f.path == path).unwrap()
}

#[tokio::test]
async fn a_contract_types_csv_and_json_columns_and_sets_the_reject_rate() {
    let mut env = start().await;
    env.write(
        "datasets/prices/README.md",
        readme("max_reject_rate = 0.5\n[columns]\nzip = \"bigint\"\namount = \"float8\""),
    );
    // Inferred alone, zip would be text (leading zeros) and amount bigint; one row in three
    // is bad, far over the default 10 %.
    env.write(
        "datasets/prices/v1/a.csv",
        "zip,amount,label\n01234,1,x\n98765,2,y\nnope,3,z\n",
    );
    env.write(
        "datasets/events/README.md",
        readme(
            "max_reject_rate = 0.3\n[columns]\nid = \"bigint\"\nat = \"timestamptz\"\nlabel = \"text\"",
        ),
    );
    env.write(
        "datasets/events/v1/e.jsonl",
        concat!(
            "{\"id\": 1, \"at\": \"2024-06-01T09:30:00+02:00\", \"label\": \"a\"}\n",
            "{\"id\": \"2\", \"label\": 5}\n",
            "{\"id\": 3.5, \"label\": \"c\"}\n",
            "{\"id\": null, \"at\": \"\", \"label\": {\"k\": [1]}}\n",
        ),
    );
    let report = env.sync().await;
    let prices = file(&report, "datasets/prices/v1/a.csv");
    assert_eq!(
        (prices.status, prices.rows_loaded, prices.rows_rejected),
        ("loaded", 2, 1),
        "{prices:#?}"
    );
    let table = quoted(&table_of(&report, "datasets/prices/v1/a.csv"));
    assert_eq!(
        env.rows(
            &table_of(&report, "datasets/prices/v1/a.csv"),
            "zip::text, amount::text, pg_typeof(amount)::text"
        )
        .await,
        [
            [
                Some("1234".into()),
                Some("1".into()),
                Some("double precision".into())
            ],
            [
                Some("98765".into()),
                Some("2".into()),
                Some("double precision".into())
            ],
        ]
    );
    let reason: String = env
        .client
        .query_one(
            "SELECT reason FROM ferry.etl_rejects WHERE path = 'datasets/prices/v1/a.csv'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("\"nope\" is not a bigint"), "{reason}");
    assert_eq!(env.count(&format!("SELECT count(*) FROM {table}")).await, 2);

    let events = file(&report, "datasets/events/v1/e.jsonl");
    assert_eq!(
        (events.rows_loaded, events.rows_rejected),
        (3, 1),
        "{events:#?}"
    );
    let names: Vec<&str> = events.schema.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "at", "label", "record"]);
    assert_eq!(
        env.rows(
            &table_of(&report, "datasets/events/v1/e.jsonl"),
            "id::text, (at AT TIME ZONE 'UTC')::text, label, record->>'id'"
        )
        .await,
        [
            [
                Some("1".into()),
                Some("2024-06-01 07:30:00".into()),
                Some("a".into()),
                Some("1".into())
            ],
            [Some("2".into()), None, Some("5".into()), Some("2".into())],
            [None, None, Some("{\"k\":[1]}".into()), None],
        ]
    );
    let reason: String = env
        .client
        .query_one(
            "SELECT reason FROM ferry.etl_rejects WHERE path = 'datasets/events/v1/e.jsonl'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason, "key \"id\": 3.5 is not a bigint");
}

#[tokio::test]
async fn a_broken_contract_holds_its_files_until_it_is_mended() {
    let mut env = start().await;
    env.write("datasets/d/README.md", readme("[columns]\nid = \"uuid\""));
    env.write("datasets/d/v1/a.csv", "id,name\n1,x\n");
    env.write("datasets/other/v1/b.csv", "id\n7\n");
    let report = env.sync().await;
    let a = file(&report, "datasets/d/v1/a.csv");
    assert_eq!(a.status, "failed");
    let error = a.error.clone().unwrap();
    assert!(
        error.contains("datasets/d/README.md") && error.contains("\"uuid\" is not a type"),
        "{error}"
    );
    assert_eq!(report.status, "partial");
    assert_eq!(file(&report, "datasets/other/v1/b.csv").status, "loaded");
    // Nothing recorded against the file's version: it is tried again.
    let again = env.sync().await;
    assert_eq!(file(&again, "datasets/d/v1/a.csv").status, "failed");

    env.write("datasets/d/README.md", readme("[columns]\nid = \"text\""));
    let mended = env.sync().await;
    let a = file(&mended, "datasets/d/v1/a.csv");
    assert_eq!((a.status, a.rows_loaded), ("loaded", 1), "{a:#?}");
    assert_eq!(a.schema[0].pg_type, "text");
    assert_eq!(mended.status, "succeeded");

    // A CSV file without a column its contract names fails, and says which.
    env.write("datasets/d/v2/c.csv", "name\nx\n");
    let report = env.sync().await;
    let c = file(&report, "datasets/d/v2/c.csv");
    assert_eq!(c.status, "failed");
    assert!(
        c.error.as_deref().unwrap().contains("names column \"id\""),
        "{c:#?}"
    );
}

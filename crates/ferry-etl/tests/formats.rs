//! Every format into Postgres: JSON, JSON Lines, gzip and zstd, Parquet with every kind of
//! column, and the broken variants of each.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use common::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn json_lines_arrays_documents_and_compressed_files() {
    let mut env = start().await;
    // 2 records, a blank line, a line that is not JSON, then 20 more records.
    let mut lines = "{\"id\": 1, \"tags\": [\"x\"]}\n\n{\"id\": 2}\nnot json\n".to_owned();
    for i in 100..120 {
        lines.push_str(&format!("{{\"id\": {i}}}\n"));
    }
    env.write("datasets/events/v1/a.jsonl", lines);
    env.write(
        "datasets/events/v1/b.jsonl.gz",
        gzip(b"{\"id\": 3}\n{\"id\": 4, \"nested\": {\"k\": null}}\n"),
    );
    env.write(
        "datasets/events/v1/c.jsonl.zst",
        zstd::encode_all(&b"{\"id\": 5}\n"[..], 3).unwrap(),
    );
    env.write(
        "datasets/docs/v1/array.json",
        "[{\"id\": 10}, {\"id\": 11}, 12]",
    );
    env.write(
        "datasets/docs/v2/one.json",
        "{\"id\": 20, \"s\": \"caf\u{e9}\"}",
    );
    env.write("datasets/docs/v3/bad.json", "id,name\n1,x\n");
    env.write("datasets/csvz/v1/t.csv.gz", gzip(b"a,b\n1,x\n2,y\n"));
    let report = env.sync().await;
    let status = |p: &str| {
        report
            .files
            .iter()
            .find(|f| f.path.ends_with(p))
            .map(|f| (f.status, f.rows_loaded, f.rows_rejected, f.error.clone()))
            .unwrap()
    };
    assert_eq!(status("a.jsonl"), ("loaded", 22, 1, None));
    assert_eq!(status("b.jsonl.gz"), ("loaded", 2, 0, None));
    assert_eq!(status("c.jsonl.zst"), ("loaded", 1, 0, None));
    assert_eq!(status("array.json"), ("loaded", 3, 0, None));
    assert_eq!(status("one.json"), ("loaded", 1, 0, None));
    assert_eq!(status("t.csv.gz").0, "loaded");
    let bad = status("bad.json");
    assert_eq!(bad.0, "failed");
    assert!(bad.3.unwrap().starts_with("not JSON"));

    let events = quoted(&table_of(&report, "datasets/events/v1/a.jsonl"));
    assert!(events.starts_with("\"ai_raw_json\""), "{events}");
    let ids: Vec<i64> = env
        .client
        .query(
            &format!("SELECT (record->>'id')::bigint FROM {events} WHERE (record->>'id')::bigint < 100 ORDER BY 1"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let nested: String = env
        .client
        .query_one(
            &format!("SELECT record->'nested'->>'k' IS NULL AND jsonb_typeof(record->'nested') = 'object' FROM {events} WHERE record->>'id' = '4'"),
            &[],
        )
        .await
        .map(|r| r.get::<_, bool>(0).to_string())
        .unwrap();
    assert_eq!(nested, "true");
    let reject_line: i64 = env
        .client
        .query_one(
            "SELECT line FROM ferry.etl_rejects WHERE path LIKE '%a.jsonl'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reject_line, 4);
    let sha: String = env
        .client
        .query_one(
            "SELECT sha256 FROM ferry.onedrive_ingest WHERE path LIKE '%b.jsonl.gz'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let raw = std::fs::read(env.root.path().join("datasets/events/v1/b.jsonl.gz")).unwrap();
    assert_eq!(
        sha,
        hex_sha256(&raw),
        "the hash is of the file as stored (compressed)"
    );
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

fn parquet_batch() -> RecordBatch {
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("a");
    tags.values().append_value("b");
    tags.append(true);
    tags.append(false);
    tags.values().append_value("c");
    tags.append(true);
    let mut scores = ListBuilder::new(Int32Builder::new());
    scores.values().append_value(1);
    scores.values().append_null();
    scores.append(true);
    scores.append(true);
    scores.append(false);
    let point = StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int32, true)),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("label", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("p"), Some("q"), None])) as ArrayRef,
        ),
    ]);
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-1), None, Some(127)])),
        ),
        ("i16", Arc::new(Int16Array::from(vec![1, 2, 3]))),
        ("i32", Arc::new(Int32Array::from(vec![1, 2, 3]))),
        (
            "i64",
            Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
        ),
        ("u32", Arc::new(UInt32Array::from(vec![0, 1, u32::MAX]))),
        ("f32", Arc::new(Float32Array::from(vec![1.5, -0.25, 0.0]))),
        (
            "f64",
            Arc::new(Float64Array::from(vec![Some(1e300), None, Some(-2.5)])),
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("day", Arc::new(Date32Array::from(vec![19875, 0, -1]))),
        (
            "at",
            Arc::new(TimestampMicrosecondArray::from(vec![
                1_717_234_200_000_000,
                0,
                1,
            ])),
        ),
        (
            "at_utc",
            Arc::new(
                TimestampMillisecondArray::from(vec![1_717_234_200_000, 0, 1]).with_timezone("UTC"),
            ),
        ),
        (
            "ok",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![Some("a"), None, Some("ü")])),
        ),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![&b"\x00\x01"[..], b"", b"z"])),
        ),
        ("tags", Arc::new(tags.finish())),
        ("scores", Arc::new(scores.finish())),
        ("point", Arc::new(point)),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

fn parquet_bytes(batches: &[RecordBatch]) -> Vec<u8> {
    let mut out = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    out
}

#[tokio::test]
async fn parquet_columns_keep_their_types() {
    let mut env = start().await;
    let bytes = parquet_bytes(&[parquet_batch()]);
    env.write("datasets/pq/v1/data.parquet", &bytes);
    env.write("datasets/pq/v2/broken.parquet", &bytes[..bytes.len() / 2]);
    let report = env.sync().await;
    let file = |p: &str| report.files.iter().find(|f| f.path.ends_with(p)).unwrap();
    assert_eq!(file("data.parquet").status, "loaded", "{report:#?}");
    assert_eq!(file("data.parquet").rows_loaded, 3);
    let broken = file("broken.parquet");
    assert_eq!(broken.status, "failed");
    assert!(
        broken.error.as_deref().unwrap().contains("Parquet"),
        "{:?}",
        broken.error
    );
    let table = quoted(&table_of(&report, "datasets/pq/v1/data.parquet"));
    let types: Vec<(String, String)> = env
        .client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 2 ORDER BY attnum",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [
        ("i8", "smallint"),
        ("i16", "smallint"),
        ("i32", "integer"),
        ("i64", "bigint"),
        ("u32", "bigint"),
        ("f32", "real"),
        ("f64", "double precision"),
        ("price", "numeric"),
        ("day", "date"),
        ("at", "timestamp without time zone"),
        ("at_utc", "timestamp with time zone"),
        ("ok", "boolean"),
        ("name", "text"),
        ("blob", "bytea"),
        ("tags", "text[]"),
        ("scores", "integer[]"),
        ("point", "jsonb"),
    ];
    let got: Vec<(&str, &str)> = types
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(got, want);
    env.client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .unwrap();
    let rows = env
        .rows(
            &table.replace('"', ""),
            "i8::text, i64::text, u32::text, f64::text, price::text, day::text, at::text, \
             at_utc::text, ok::text, name, encode(blob, 'hex'), tags::text, scores::text, point::text",
        )
        .await;
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows[0],
        vec![
            s("-1"),
            s("-9223372036854775808"),
            s("0"),
            s("1e+300"),
            s("123.45"),
            s("2024-06-01"),
            s("2024-06-01 09:30:00"),
            s("2024-06-01 09:30:00+00"),
            s("true"),
            s("a"),
            s("0001"),
            s("{a,b}"),
            s("{1,NULL}"),
            s("{\"x\": 1, \"label\": \"p\"}"),
        ]
    );
    assert_eq!(rows[1][0], None);
    assert_eq!(rows[1][4], None);
    assert_eq!(rows[1][11], None, "a NULL list");
    assert_eq!(rows[1][12], s("{}"), "an empty list");
    assert_eq!(rows[2][13], s("{\"x\": 3, \"label\": null}"));
}

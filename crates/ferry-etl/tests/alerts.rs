//! Alerts: recorded in ferry.alerts, announced with NOTIFY, stale cursors once per period.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt as _;
use tokio_postgres::AsyncMessage;

#[tokio::test]
async fn a_failed_file_raises_an_alert_that_listeners_hear() {
    let mut env = start().await;
    // Listen on a connection whose messages we read ourselves.
    let config = env.db.cluster.config(env.db.port).unwrap();
    let (listener, mut conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    listener.batch_execute("LISTEN ferry_alerts").await.unwrap();

    env.write("datasets/d/v1/bad.csv", "a,b\n1,2\nx\ny\n");
    env.write("datasets/d/v2/good.csv", "a\n1\n");
    let report = env.sync().await;
    assert_eq!(report.status, "partial");
    let (kind, message) = ferry_etl::alerts::for_run(&report).unwrap();
    let alert = ferry_etl::alerts::raise(
        &mut env.client,
        kind,
        &report.source,
        Some(report.run_id),
        &message,
    )
    .await
    .unwrap();
    assert!(
        alert.message.contains("datasets/d/v1/bad.csv"),
        "{}",
        alert.message
    );
    let payload = tokio::time::timeout(Duration::from_secs(10), heard.recv())
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(json["kind"], "run_failed");
    assert_eq!(json["run_id"], report.run_id);
    assert_eq!(
        env.count("SELECT count(*) FROM ferry.alerts WHERE kind = 'run_failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_stale_cursor_is_reported_once_per_period() {
    let mut env = start().await;
    let source = "local:/nowhere";
    let hour = Duration::from_secs(3600);
    // Never run: nothing to say yet.
    assert_eq!(
        ferry_etl::alerts::stale(&env.client, source, hour)
            .await
            .unwrap(),
        None
    );
    // Its only run, two hours ago, failed.
    env.client
        .execute(
            "INSERT INTO ferry.etl_runs (source, trigger, started_at, finished_at, status)
             VALUES ($1, 'schedule', now() - interval '2 hours', now() - interval '2 hours', 'failed')",
            &[&source],
        )
        .await
        .unwrap();
    let message = ferry_etl::alerts::stale(&env.client, source, hour)
        .await
        .unwrap()
        .unwrap();
    assert!(message.contains("more than 1h"), "{message}");
    ferry_etl::alerts::raise(&mut env.client, "stale_cursor", source, None, &message)
        .await
        .unwrap();
    assert_eq!(
        ferry_etl::alerts::stale(&env.client, source, hour)
            .await
            .unwrap(),
        None,
        "already alerted within the period"
    );
    // A success clears it.
    env.client
        .execute(
            "INSERT INTO ferry.etl_runs (source, trigger, finished_at, status)
             VALUES ($1, 'schedule', now(), 'succeeded')",
            &[&source],
        )
        .await
        .unwrap();
    env.client
        .execute("DELETE FROM ferry.alerts", &[])
        .await
        .unwrap();
    assert_eq!(
        ferry_etl::alerts::stale(&env.client, source, hour)
            .await
            .unwrap(),
        None
    );
}

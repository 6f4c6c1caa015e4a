//! The request queue: a claimed request is never handed to a second worker while its
//! claimer lives, and goes back to pending once the claimer's session is gone.

#![allow(clippy::unwrap_used)]

mod common;

use ferry_etl::queue;

async fn status(client: &tokio_postgres::Client, id: i64) -> String {
    client
        .query_one(
            "SELECT status FROM ferry.sync_requests WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_claimed_request_stays_with_its_worker_until_that_worker_dies() {
    let env = common::start().await;
    let mut first = env.db.client().await;
    let mut second = env.db.client().await;
    env.client
        .batch_execute("SELECT ferry.request_sync() FROM generate_series(1, 2)")
        .await
        .unwrap();

    // Claimed, and the claimer has not started its run yet: another worker's sweep for
    // abandoned requests must leave it alone (this once ran a request twice).
    let a = queue::claim(&mut first, "local", "first")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue::requeue_abandoned(&second, "local").await.unwrap(), 0);
    let b = queue::claim(&mut second, "local", "second")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a.id, b.id);
    assert!(
        queue::claim(&mut second, "local", "second")
            .await
            .unwrap()
            .is_none()
    );

    // Finished: done, and its lock is gone with it.
    queue::finish(&first, a.id, None, true).await.unwrap();
    assert_eq!(status(&env.client, a.id).await, "done");
    assert_eq!(queue::requeue_abandoned(&first, "local").await.unwrap(), 0);

    // The second worker dies holding its request: the next sweep hands it back, once.
    drop(second);
    let mut requeued = 0;
    for _ in 0..50 {
        requeued = queue::requeue_abandoned(&first, "local").await.unwrap();
        if requeued > 0 {
            break;
        }
        // The server notices the closed session a moment later.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(requeued, 1);
    assert_eq!(status(&env.client, b.id).await, "pending");
    let again = queue::claim(&mut first, "local", "first")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, b.id);
    queue::release(&first, again.id).await.unwrap();
    assert_eq!(status(&env.client, b.id).await, "pending");
    assert_eq!(queue::requeue_abandoned(&first, "local").await.unwrap(), 0);
}

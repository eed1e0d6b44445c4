//! Migration 2 on a database the baseline made, holding data: every row
//! survives (the outbox's reference to its message included), foreign keys
//! still hold, and a Flex message is unique per conversation only.

use std::str::FromStr as _;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::sqlite_migrator_up_to;
use crate::store::Store;
use crate::store::sql::Pool;

async fn exec(pool: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .expect(sql);
}

#[tokio::test]
async fn migration_2_keeps_a_baseline_databases_rows_and_scopes_flex_messages_per_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let old = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    sqlite_migrator_up_to(1).run(&old).await.unwrap();
    exec(&old, "INSERT INTO customers (id, name, token_hash, last_seq, created_at) VALUES ('cus_a', 'Ada', x'01', 2, 0)").await;
    for (id, channel) in [("conv_a", "CH1"), ("conv_b", "CH2")] {
        exec(&old, &format!("INSERT INTO conversations (id, customer_id, backend, state, flex_channel, created_at, updated_at) VALUES ('{id}', 'cus_a', 'chat', 'closed', '{channel}', 0, 0)")).await;
    }
    exec(&old, "INSERT INTO messages (id, customer_id, conversation_id, seq, direction, author, body, client_msg_id, flex_message, delivery, created_at) VALUES (1, 'cus_a', 'conv_a', 1, 'customer', 'Ada', 'hi', 'm1', 'IM1', 'pending', 0)").await;
    exec(&old, "INSERT INTO messages (id, customer_id, conversation_id, seq, direction, author, body, flex_message, created_at) VALUES (2, 'cus_a', 'conv_a', 2, 'agent', 'alice', 'hello', 'IM2', 0)").await;
    exec(&old, "INSERT INTO outbox (conversation_id, kind, message_id, next_attempt_at, created_at) VALUES ('conv_a', 'send', 1, 0, 0)").await;
    old.close().await;

    let store = Store::connect(&url).await.expect("migrated");

    let Pool::Sqlite(pool) = store.reader() else {
        panic!("a SQLite store");
    };
    let messages: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT id, body, flex_message FROM messages ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        messages,
        [
            (1, "hi".to_owned(), Some("IM1".to_owned())),
            (2, "hello".to_owned(), Some("IM2".to_owned()))
        ]
    );
    let queued: Option<i64> = sqlx::query_scalar("SELECT message_id FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(queued, Some(1));
    let violations: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let insert = |id: i64, conversation: &str, seq: i64| {
        format!(
            "INSERT INTO messages (id, customer_id, conversation_id, seq, direction, author, body, flex_message, created_at) \
             VALUES ({id}, 'cus_a', '{conversation}', {seq}, 'agent', 'alice', 'x', 'IM2', 0)"
        )
    };
    let Pool::Sqlite(writer) = &store.writer else {
        panic!("a SQLite store");
    };
    sqlx::query(sqlx::AssertSqlSafe(insert(3, "conv_b", 3)))
        .execute(writer)
        .await
        .expect("the same SID in another conversation is stored");
    let again = sqlx::query(sqlx::AssertSqlSafe(insert(4, "conv_a", 4)))
        .execute(writer)
        .await;
    assert!(again.is_err(), "the same SID twice in one conversation");
    let orphan = sqlx::query(
        "INSERT INTO outbox (conversation_id, kind, message_id, next_attempt_at, created_at) VALUES ('conv_a', 'send', 99, 0, 0)",
    )
    .execute(writer)
    .await;
    assert!(orphan.is_err(), "foreign keys are on again");
    store.close().await;
}

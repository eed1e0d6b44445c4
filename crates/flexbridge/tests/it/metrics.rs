//! `/metrics` as Prometheus reads it: every family of the issue's list
//! with HELP text and at zero on a fresh bridge, and the ones a chat moves
//! moving with it.

use flexbridge::flex::BackendKind;
use serde_json::json;

use super::{TestApp, eventually, say, spawn_app};

crate::on_both_databases!(
    a_fresh_bridge_lists_every_family_with_help_text_at_zero,
    a_chat_moves_deliveries_latencies_presence_and_webhooks,
);

async fn scrape(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// The value of the series `series` (name and labels, as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Families the bridge counts, each with every label value an operator's
/// alert may name.
const AT_ZERO: &[&str] = &[
    r#"flexbridge_deliveries_total{outcome="delivered"}"#,
    r#"flexbridge_deliveries_total{outcome="failed"}"#,
    r#"flexbridge_deliveries_total{outcome="delayed"}"#,
    r#"flexbridge_outbox_retries_total{status="401"}"#,
    r#"flexbridge_outbox_retries_total{status="404"}"#,
    r#"flexbridge_outbox_retries_total{status="429"}"#,
    r#"flexbridge_outbox_retries_total{status="5xx"}"#,
    r#"flexbridge_outbox_retries_total{status="timeout"}"#,
    r#"flexbridge_webhooks_total{result="applied"}"#,
    r#"flexbridge_webhooks_total{result="duplicate"}"#,
    r#"flexbridge_webhooks_total{result="rejected"}"#,
    r#"flexbridge_webhooks_rejected_total{reason="bad_signature"}"#,
    r#"flexbridge_webhooks_rejected_total{reason="malformed"}"#,
    r#"flexbridge_outbox_poison_jobs_total{kind="send"}"#,
    r#"flexbridge_outbox_poison_jobs_total{kind="open"}"#,
    "flexbridge_twilio_auth_failures_total",
    "flexbridge_sockets_connected",
    "flexbridge_customers_online",
    "flexbridge_conversations_open",
    "flexbridge_outbox_depth",
    "flexbridge_delivery_latency_seconds_count",
    "flexbridge_agent_message_latency_seconds_count",
    "flexbridge_redis_publish_failures_total",
];

async fn a_fresh_bridge_lists_every_family_with_help_text_at_zero() {
    let app = spawn_app(BackendKind::Conversations).await;
    let text = scrape(&app).await;
    for series in AT_ZERO {
        assert_eq!(value(&text, series), Some(0.0), "{series} at 0 in:\n{text}");
    }
    for family in [
        "flexbridge_deliveries_total",
        "flexbridge_outbox_retries_total",
        "flexbridge_webhooks_total",
        "flexbridge_webhooks_rejected_total",
        "flexbridge_outbox_poison_jobs_total",
        "flexbridge_twilio_auth_failures_total",
        "flexbridge_sockets_connected",
        "flexbridge_customers_online",
        "flexbridge_conversations_open",
        "flexbridge_outbox_depth",
        "flexbridge_delivery_latency_seconds",
        "flexbridge_agent_message_latency_seconds",
        "flexbridge_store_commit_seconds",
        "flexbridge_redis_publish_failures_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("# HELP {family} "))),
            "no HELP for {family} in:\n{text}"
        );
    }
    // The store commits at start (its setup), so only present, not zero.
    assert!(value(&text, "flexbridge_store_commit_seconds_count").is_some());
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
}

async fn a_chat_moves_deliveries_latencies_presence_and_webhooks() {
    let app = spawn_app(BackendKind::Conversations).await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "flexbridge_sockets_connected"), Some(1.0));
    assert_eq!(value(&before, "flexbridge_customers_online"), Some(1.0));

    say(&mut socket, "m1", "hello").await;
    let delivery = socket.next_event("delivery").await;
    assert_eq!(delivery["status"], json!("delivered"), "{delivery}");
    let work = app.accept(None).await;
    app.agent_says(&work.agent, &work.task, "Hi Ada").await;
    socket
        .next_event_where("message", |m| m["body"] == json!("Hi Ada"))
        .await;
    let refused = app
        .post_webhook(&app.agent_message_form("CH0", "IM0", "forged"), Some("bad"))
        .await;
    assert_eq!(refused.as_u16(), 403);

    let text = scrape(&app).await;
    for (series, expected) in [
        (r#"flexbridge_deliveries_total{outcome="delivered"}"#, 1.0),
        ("flexbridge_delivery_latency_seconds_count", 1.0),
        ("flexbridge_agent_message_latency_seconds_count", 1.0),
        (
            r#"flexbridge_webhooks_rejected_total{reason="bad_signature"}"#,
            1.0,
        ),
        (r#"flexbridge_webhooks_total{result="rejected"}"#, 1.0),
        ("flexbridge_conversations_open", 1.0),
        ("flexbridge_outbox_depth", 0.0),
        ("flexbridge_customers_online", 1.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in:\n{text}");
    }
    assert!(
        value(&text, r#"flexbridge_webhooks_total{result="applied"}"#).is_some_and(|v| v >= 1.0),
        "{text}"
    );

    socket.disconnect().await;
    eventually("the customer counts as gone", || async {
        let text = scrape(&app).await;
        value(&text, "flexbridge_sockets_connected") == Some(0.0)
            && value(&text, "flexbridge_customers_online") == Some(0.0)
    })
    .await;
}

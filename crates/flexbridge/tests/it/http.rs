//! Plain HTTP: the web chat page, health, metrics; provisioning.

use flexbridge::flex::BackendKind;
use flexbridge::flex::provision::{FlowSpec, ensure_flex_flow};
use flexbridge::flex::sid::{ChatServiceSid, StudioFlowSid};

use serde_json::json;

use crate::spawn_app;

crate::on_both_databases!(health_readiness_and_metrics_answer,);

#[tokio::test]
async fn the_web_chat_is_served_with_a_strict_content_security_policy() {
    let app = spawn_app(BackendKind::Conversations).await;

    let page = app.http.get(&app.url).send().await.expect("page");

    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("access-control-allow-origin").is_none());
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let etag = headers["etag"].clone();
    for asset in ["/widget.js", "/widget.css"] {
        let response = app
            .http
            .get(format!("{}{asset}", app.url))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
    }
    let again = app
        .http
        .get(&app.url)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("revalidation");
    assert_eq!(again.status(), 304);
}

async fn health_readiness_and_metrics_answer() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut ada = app.customer("Ada").await;
    ada.socket
        .emit_with_ack("message", json!({"clientMessageId": "m1", "body": "hi"}))
        .await;
    ada.socket.next_event("delivery").await;

    for (path, needles) in [
        ("/healthz", vec!["ok"]),
        ("/readyz", vec!["ready"]),
        (
            "/metrics",
            vec![
                "flexbridge_messages_in_total{from=\"customer\"} 1",
                "flexbridge_messages_out_total 1",
                "flexbridge_delivery_latency_seconds_bucket",
                "flexbridge_outbox_depth",
            ],
        ),
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect(path);
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.expect("text");
        for needle in needles {
            assert!(text.contains(needle), "{path} lacks {needle}:\n{text}");
        }
    }
}

#[tokio::test]
async fn provisioning_twice_finds_the_flex_flow_the_first_run_created() {
    let app = spawn_app(BackendKind::Conversations).await;
    let client = flexbridge::startup::twilio_client(&app.settings.twilio).expect("client");
    let bootstrap = app.emulator.emulator.bootstrap();
    let chat = ChatServiceSid::parse(&bootstrap.chat_service_sid).expect("IS");
    let studio = StudioFlowSid::parse(&bootstrap.studio_flow_sid).expect("FW");
    let spec = FlowSpec {
        friendly_name: "another flow",
        chat_service: &chat,
        studio_flow: &studio,
    };

    let first = ensure_flex_flow(&client, &spec).await.expect("first run");
    let second = ensure_flex_flow(&client, &spec).await.expect("second run");

    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.flow_sid, second.flow_sid);
    assert!(second.differences.is_empty(), "{:?}", second.differences);
    let flows = app.state().await["flex_flows"].as_array().map(Vec::len);
    assert_eq!(flows, Some(2), "the dev flow and this one");
}

//! Files both ways on both backends: a customer's upload reaches the
//! agent once (through MCS faults and a crash), an agent's file reaches
//! the customer and is served to them only, and refused uploads store
//! nothing.

use base64::Engine as _;
use flexbridge::flex::BackendKind;
use serde_json::{Value, json};

use crate::{TestApp, on_both_backends, say, spawn_app, spawn_app_with, wait_for};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
const PDF: &[u8] = b"%PDF-1.7\n%%EOF\n";

/// Uploads `bytes` as `content_type` with `token`; the answer's status and JSON.
async fn upload(app: &TestApp, token: &str, content_type: &str, bytes: &[u8]) -> (u16, Value) {
    let answer = app
        .http
        .post(format!("{}/attachments?name=shot.png", app.url))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("the bridge answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The customers' file messages of `channel`, as the emulator keeps them.
fn customer_files(channel: &Value) -> Vec<Value> {
    channel["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| !m["media"].is_null())
        .filter(|m| {
            m["from"]
                .as_str()
                .or_else(|| m["author"].as_str())
                .is_some_and(|a| a.starts_with("flexbridge_"))
        })
        .cloned()
        .collect()
}

/// How many files of the bridge's database.
async fn stored_files(app: &TestApp) -> i64 {
    let pool = sqlx::SqlitePool::connect(&app.settings.database_url)
        .await
        .expect("the database");
    sqlx::query_scalar("SELECT COUNT(*) FROM attachments")
        .fetch_one(&pool)
        .await
        .expect("counted")
}

async fn files_go_both_ways_and_each_customer_gets_only_their_own(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    let bob = app.customer("Bob").await;
    say(&mut ada.socket, "m0", "hello").await;
    let work = app.accept(None).await;

    let (status, uploaded) = upload(&app, &ada.token, "image/png", PNG).await;
    assert_eq!(status, 201, "{uploaded}");
    let id = uploaded["attachment"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(uploaded["attachment"]["type"], "image/png");
    let ack = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "f1", "attachment": id}),
        )
        .await;
    assert!(ack["ok"].is_object(), "{ack}");
    let echoed = ada
        .socket
        .next_event_where("message", |m| m["clientMessageId"] == "f1")
        .await;
    assert_eq!(echoed["attachment"]["id"], id.as_str());
    assert_eq!(echoed["body"], "shot.png");

    // The agent has it, with its bytes behind the media's temporary link.
    let file = wait_for("the agent has the file", || async {
        customer_files(&app.channel(&work.channel).await).pop()
    })
    .await;
    let media = if backend == BackendKind::Chat {
        file["media"].clone()
    } else {
        file["media"][0].clone()
    };
    assert_eq!(media["content_type"], "image/png");
    assert_eq!(media["size"], PNG.len());

    // The agent answers with a PDF.
    app.emulator_post(
        &format!(
            "/_emulator/agents/{}/tasks/{}/messages",
            work.agent, work.task
        ),
        json!({"media": {"filename": "guide.pdf", "content_type": "application/pdf",
                         "content_base64": base64::engine::general_purpose::STANDARD.encode(PDF)}}),
    )
    .await;
    let reply = ada
        .socket
        .next_event_where("message", |m| {
            m["direction"] == "agent" && !m["attachment"].is_null()
        })
        .await;
    assert_eq!(reply["attachment"]["name"], "guide.pdf");
    assert_eq!(reply["attachment"]["type"], "application/pdf");
    let pdf_id = reply["attachment"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let get = |token: &str, id: &str| {
        app.http
            .get(format!("{}/attachments/{id}", app.url))
            .bearer_auth(token)
            .send()
    };
    let download = get(&ada.token, &pdf_id).await.expect("answered");
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"guide.pdf\"")
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
    let own = get(&ada.token, &id).await.expect("answered");
    assert_eq!(own.bytes().await.unwrap().as_ref(), PNG);
    for other in [&pdf_id, &id] {
        let theirs = get(&bob.token, other).await.expect("answered");
        assert_eq!(theirs.status(), 404, "another customer's file is not found");
    }
    let transcript = app
        .http
        .get(format!("{}/transcript", app.url))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        transcript.contains("[attachment] shot.png (image/png"),
        "{transcript}"
    );
    assert!(
        transcript.contains("[attachment] guide.pdf (application/pdf"),
        "{transcript}"
    );

    // Another message naming the same file is refused.
    let again = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "f2", "attachment": id}),
        )
        .await;
    assert_eq!(again["error"]["code"], "unknown_attachment", "{again}");
}

async fn a_file_reaches_flex_once_through_mcs_faults_and_a_crash(backend: BackendKind) {
    let mut app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m0", "hello").await;
    let channel = app.channel_of(&ada.id).await;
    let media_path = "/v1/Services/*/Media";
    app.fault(
        json!({"method": "POST", "path": media_path, "kind": "error", "status": 500, "count": 1}),
    )
    .await;
    app.fault(json!({"method": "POST", "path": media_path, "kind": "rate_limit", "retry_after": 1, "count": 1}))
        .await;
    app.fault(
        json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error",
                     "status": 500, "lands": true, "count": 1}),
    )
    .await;

    let (status, uploaded) = upload(&app, &ada.token, "image/png", PNG).await;
    assert_eq!(status, 201, "{uploaded}");
    let ack = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "f1", "attachment": uploaded["attachment"]["id"]}),
        )
        .await;
    assert!(ack["ok"].is_object(), "{ack}");
    wait_for("the file is delivered", || async {
        let files = customer_files(&app.channel(&channel).await);
        (!files.is_empty()).then_some(())
    })
    .await;

    // A crash and a restart send nothing again; the next file goes once too.
    app.crash_and_restart().await;
    let mut tab = app.tab(&ada.token, 0).await;
    let (_, second) = upload(&app, &ada.token, "image/png", PNG).await;
    let ack = tab
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "f2", "attachment": second["attachment"]["id"]}),
        )
        .await;
    assert!(ack["ok"].is_object(), "{ack}");
    let files = wait_for("the second file is delivered", || async {
        let files = customer_files(&app.channel(&channel).await);
        (files.len() >= 2).then_some(files)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let files_after = customer_files(&app.channel(&channel).await);
    assert_eq!(files.len(), 2, "each file once: {files:?}");
    assert_eq!(files_after.len(), 2, "and nothing later");
}

on_both_backends!(
    files_go_both_ways_and_each_customer_gets_only_their_own,
    a_file_reaches_flex_once_through_mcs_faults_and_a_crash,
);

#[tokio::test]
async fn refused_uploads_are_answered_clearly_and_store_nothing() {
    let app = spawn_app_with(
        flexbridge::dev::DevFlex {
            backend: BackendKind::Conversations,
            routing: flexbridge::flex::conversations::RoutingKind::Interactions,
        },
        |settings| settings.widget.attachments.max_bytes = 64,
    )
    .await;
    let ada = app.customer("Ada").await;

    let (status, html) = upload(&app, &ada.token, "text/html", PNG).await;
    assert_eq!(
        (status, &html["error"]["code"]),
        (415, &json!("type_not_allowed")),
        "{html}"
    );
    let (status, disguised) = upload(&app, &ada.token, "text/plain", PNG).await;
    assert_eq!(
        (status, &disguised["error"]["code"]),
        (422, &json!("content_mismatch")),
        "{disguised}"
    );
    let (status, large) = upload(&app, &ada.token, "image/png", &[PNG, &[0; 100]].concat()).await;
    assert_eq!(
        (status, &large["error"]["code"]),
        (413, &json!("too_large")),
        "{large}"
    );
    let (status, anonymous) = upload(&app, "not-a-token", "image/png", PNG).await;
    assert_eq!(status, 401, "{anonymous}");

    assert_eq!(stored_files(&app).await, 0, "nothing stored");
    let (status, _) = upload(&app, &ada.token, "image/png", PNG).await;
    assert_eq!(status, 201);
    assert_eq!(stored_files(&app).await, 1);
}

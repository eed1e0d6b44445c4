//! The web chat's server side: the pre-engagement form checked field by
//! field, its answers in the Flex task on both backends (and the question as
//! the first message), the transcript for its customer only, and the origin
//! checks in front of the chat.

use flexbridge::config::AllowedOrigins;
use flexbridge::core::pre_engagement::FieldMode;
use flexbridge::dev::DevFlex;
use flexbridge::flex::BackendKind;
use flexbridge::flex::conversations::RoutingKind;
use serde_json::{Value, json};

use crate::socketio::SioClient;
use crate::{on_both_backends, spawn_app_with, wait_for};

fn flex(backend: BackendKind) -> DevFlex {
    DevFlex {
        backend,
        routing: RoutingKind::Interactions,
    }
}

/// The attributes of the one task Flex made.
async fn only_task_attributes(app: &crate::TestApp) -> Value {
    wait_for("Flex made the task", || async {
        let tasks = app.state().await["tasks"].clone();
        let task = tasks.as_array()?.first()?.clone();
        serde_json::from_str(task["attributes"].as_str()?).ok()
    })
    .await
}

async fn the_form_is_checked_per_field_and_its_answers_reach_the_flex_task(backend: BackendKind) {
    let app = spawn_app_with(flex(backend), |settings| {
        settings.widget.form.email = FieldMode::Required;
        settings.widget.form.topic = FieldMode::Optional;
        settings.widget.form.topics = vec!["Orders".into(), "Returns".into()];
        settings.widget.form.question_first = true;
    })
    .await;
    let mut socket = SioClient::connect(&app.url, json!({}))
        .await
        .expect("connect");

    let refused = socket
        .emit_with_ack(
            "register",
            json!({"name": "Mia", "email": "mia-at-example", "topic": "Gifts"}),
        )
        .await;
    assert_eq!(refused["error"]["code"], "invalid_form", "{refused}");
    assert_eq!(refused["error"]["fields"]["email"]["code"], "invalid_email");
    assert_eq!(
        refused["error"]["fields"]["topic"]["code"],
        "invalid_choice"
    );
    assert!(refused["error"]["fields"].get("name").is_none());
    let missing = socket
        .emit_with_ack("register", json!({"name": "Mia"}))
        .await;
    assert_eq!(missing["error"]["fields"]["email"]["code"], "required");

    let ack = socket
        .emit_with_ack(
            "register",
            json!({"name": "Mia", "email": "mia@example.com", "question": "Where is order 42?", "topic": "Orders"}),
        )
        .await;
    assert!(ack["ok"]["token"].is_string(), "{ack}");
    // The question is the first message: Flex gets it, and a task with the answers.
    let first = socket.next_event("message").await;
    assert_eq!(first["body"], "Where is order 42?");
    assert_eq!(first["clientMessageId"], "pre-engagement-question");
    let attributes = only_task_attributes(&app).await;
    assert_eq!(attributes["name"], "Mia");
    assert_eq!(
        attributes["pre_engagement_data"],
        json!({"friendlyName": "Mia", "email": "mia@example.com", "question": "Where is order 42?", "topic": "Orders"})
    );
    if backend == BackendKind::Conversations {
        assert_eq!(attributes["email"], "mia@example.com");
    }
}

async fn a_transcript_is_served_to_its_customer_only(backend: BackendKind) {
    let app = spawn_app_with(flex(backend), |_| {}).await;
    let mut ada = app.customer("Ada").await;
    let sent = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "m1", "body": "Hi <b>there</b>"}),
        )
        .await;
    let conversation = sent["ok"]["conversationId"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let bob = app.customer("Bob").await;
    let get = |token: &str, query: &str| {
        app.http
            .get(format!("{}/transcript{query}", app.url))
            .bearer_auth(token)
            .send()
    };

    let mine = get(&ada.token, "").await.expect("transcript");
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.headers()["cache-control"], "no-store");
    assert_eq!(mine.headers()["x-content-type-options"], "nosniff");
    assert!(
        mine.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"chat-")
    );
    let text = mine.text().await.expect("text");
    assert!(text.contains("Ada (you): Hi <b>there</b>"), "{text}");

    let theirs = get(&bob.token, &format!("?conversation={conversation}"))
        .await
        .expect("another's");
    assert_eq!(
        theirs.status(),
        404,
        "another customer's conversation is not found"
    );
    assert_eq!(
        get(&bob.token, "").await.expect("none").status(),
        404,
        "Bob has none"
    );
    let anonymous = app
        .http
        .get(format!("{}/transcript", app.url))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(get("not-a-token", "").await.expect("bad").status(), 401);
}

on_both_backends!(
    the_form_is_checked_per_field_and_its_answers_reach_the_flex_task,
    a_transcript_is_served_to_its_customer_only,
);

#[tokio::test]
async fn only_the_bridge_and_the_listed_sites_may_frame_the_chat_or_open_its_socket() {
    let app = spawn_app_with(flex(BackendKind::Conversations), |settings| {
        settings.allowed_origins = AllowedOrigins::parse("https://shop.example").unwrap();
    })
    .await;
    let page = app.http.get(&app.url).send().await.expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'self' https://shop.example;"),
        "{csp}"
    );
    assert!(
        page.headers().get("x-frame-options").is_none(),
        "it cannot list sites"
    );

    let poll = |origin: Option<&'static str>| {
        let mut request = app
            .http
            .get(format!("{}/socket.io/?EIO=4&transport=polling", app.url));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(
        poll(Some("https://evil.example")).await.unwrap().status(),
        403
    );
    assert_eq!(
        poll(Some("https://shop.example")).await.unwrap().status(),
        200
    );
    assert_eq!(
        poll(None).await.unwrap().status(),
        200,
        "no Origin: not a page"
    );

    let config = |origin: &'static str| {
        app.http
            .get(format!("{}/widget.json", app.url))
            .header("origin", origin)
            .send()
    };
    let listed = config("https://shop.example").await.unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let json: Value = listed.json().await.unwrap();
    assert_eq!(json["form"]["fields"][0]["name"], "name");
    let other = config("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

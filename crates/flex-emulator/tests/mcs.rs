//! The Media Content Service: an upload, the media resource with a
//! temporary link that serves the bytes without credentials, messages
//! with `MediaSid` on both APIs, and a media carried by one message only.

mod common;

use common::TestEmulator;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

async fn upload(emu: &TestEmulator, bytes: &[u8]) -> serde_json::Value {
    let credentials = emu.emulator.credentials();
    let answer = emu
        .http
        .post(format!("{}/v1/Services/{}/Media", emu.url, emu.service()))
        .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
        .header("Content-Type", "image/png")
        .header("Content-Disposition", "attachment; filename=\"shot.png\"")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    answer.json().await.unwrap()
}

#[tokio::test]
async fn an_upload_is_a_media_whose_temporary_link_serves_it_without_credentials() {
    let emu = TestEmulator::start().await;

    let media = upload(&emu, PNG).await;

    let sid = media["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("ME") && sid.len() == 34, "{sid}");
    assert_eq!(media["size"], PNG.len());
    assert_eq!(media["content_type"], "image/png");
    assert_eq!(media["filename"], "shot.png");
    assert_eq!(media["message_sid"], serde_json::Value::Null);
    let fetched = emu
        .get(&format!("/v1/Services/{}/Media/{sid}", emu.service()))
        .await;
    assert_eq!(fetched.status, 200);
    let link = fetched.json["links"]["content_direct_temporary"]
        .as_str()
        .unwrap()
        .to_owned();
    let anonymous = emu.http.get(&link).send().await.unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(anonymous.headers()["content-type"], "image/png");
    assert_eq!(anonymous.bytes().await.unwrap().as_ref(), PNG);
    let forged = emu
        .http
        .get(format!("{}/_media/{sid}?Token=0000", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404, "a link works only as handed out");
    let without_auth = emu
        .http
        .get(format!(
            "{}/v1/Services/{}/Media/{sid}",
            emu.url,
            emu.service()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(without_auth.status(), 401);
}

#[tokio::test]
async fn a_conversations_message_carries_a_media_once() {
    let emu = TestEmulator::start().await;
    let conversation = emu.post("/v1/Conversations", &[]).await.sid();
    let media = upload(&emu, PNG).await;
    let sid = media["sid"].as_str().unwrap();
    let messages = format!("/v1/Conversations/{conversation}/Messages");

    let message = emu
        .post(&messages, &[("Author", "ada"), ("MediaSid", sid)])
        .await;
    let again = emu
        .post(&messages, &[("Author", "ada"), ("MediaSid", sid)])
        .await;

    assert_eq!(message.status, 201, "{:?}", message.json);
    assert_eq!(message.json["body"], serde_json::Value::Null);
    assert_eq!(message.json["media"][0]["sid"], sid);
    assert_eq!(message.json["media"][0]["filename"], "shot.png");
    assert_eq!(message.json["media"][0]["size"], PNG.len());
    again.twilio_error(400, 50508);
    let attached = emu
        .get(&format!("/v1/Services/{}/Media/{sid}", emu.service()))
        .await;
    assert_eq!(attached.json["message_sid"], message.json["sid"]);
    assert_eq!(attached.json["channel_sid"], conversation.as_str());
}

#[tokio::test]
async fn a_chat_message_with_a_media_is_of_type_media() {
    let emu = TestEmulator::start().await;
    let service = emu.service();
    let channel = emu
        .post(&format!("/v2/Services/{service}/Channels"), &[])
        .await
        .sid();
    let media = upload(&emu, PNG).await;
    let sid = media["sid"].as_str().unwrap();

    let message = emu
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("From", "ada"), ("MediaSid", sid)],
        )
        .await;

    assert_eq!(message.status, 201, "{:?}", message.json);
    assert_eq!(message.json["type"], "media");
    assert_eq!(message.json["media"]["sid"], sid);
    assert_eq!(message.json["media"]["content_type"], "image/png");
    let unknown = emu
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("MediaSid", "ME00000000000000000000000000000000")],
        )
        .await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test]
async fn uploads_take_the_http_faults_like_every_rest_call() {
    let emu = TestEmulator::start().await;
    let fault = emu
        .control(
            reqwest::Method::POST,
            "/faults/http",
            Some(serde_json::json!({
                "method": "POST", "path": "/v1/Services/*/Media", "kind": "error",
                "status": 500, "count": 1
            })),
        )
        .await;
    assert_eq!(fault.status, 201);
    let credentials = emu.emulator.credentials();
    let failed = emu
        .http
        .post(format!("{}/v1/Services/{}/Media", emu.url, emu.service()))
        .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
        .header("Content-Type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500);

    upload(&emu, PNG).await;
}

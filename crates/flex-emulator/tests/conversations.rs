//! Conversations v1 resources: conversations by SID or unique name in both
//! URL families, participants, messages (webhooks only with the header) and
//! scoped webhooks (at most 5, lowercase methods, GET signed over the query
//! URL), in Twilio's shapes and error codes.

mod common;

use common::{Receiver, TestEmulator, signed_with};
use serde_json::{Value, json};

#[tokio::test]
async fn conversations_are_created_fetched_listed_updated_and_deleted_by_sid_or_unique_name() {
    let emu = TestEmulator::start().await;
    let created = emu
        .post(
            "/v1/Conversations",
            &[
                ("FriendlyName", "Support"),
                ("UniqueName", "support-1"),
                ("Attributes", r#"{"topic":"orders"}"#),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let sid = created.sid();
    assert!(sid.starts_with("CH"), "{sid}");
    assert_eq!(created.json["chat_service_sid"], emu.service());
    assert_eq!(created.json["state"], "active");
    assert_eq!(created.json["attributes"], r#"{"topic":"orders"}"#);
    assert_eq!(created.json["timers"], json!({}));
    assert_eq!(created.json["bindings"], json!({}));
    let url = format!("{}/v1/Conversations/{sid}", emu.url);
    assert_eq!(created.json["url"], url);
    assert_eq!(
        created.json["links"]["participants"],
        format!("{url}/Participants")
    );
    assert_eq!(created.json["links"]["webhooks"], format!("{url}/Webhooks"));

    let by_name = emu.get(&emu.conversation_path("support-1")).await;
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.sid(), sid);

    emu.post("/v1/Conversations", &[("UniqueName", "support-1")])
        .await
        .twilio_error(409, 50353);
    emu.post("/v1/Conversations", &[("UniqueName", &sid)])
        .await
        .twilio_error(400, 50390);
    let bare = emu.conversation(&[]).await;
    assert_eq!(
        emu.get(&emu.conversation_path(&bare)).await.json["attributes"],
        "{}"
    );

    let updated = emu
        .post(
            &emu.conversation_path("support-1"),
            &[
                ("FriendlyName", "Support (VIP)"),
                ("UniqueName", "support-2"),
            ],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.json);
    assert_eq!(updated.json["friendly_name"], "Support (VIP)");
    assert_eq!(updated.json["unique_name"], "support-2");
    emu.get(&emu.conversation_path("support-1"))
        .await
        .twilio_error(404, 20404);

    let listed = emu.get("/v1/Conversations").await;
    let sids: Vec<&Value> = listed.json["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["sid"])
        .collect();
    assert_eq!(sids, [&json!(sid), &json!(bare)]);
    assert_eq!(listed.json["meta"]["key"], "conversations");

    assert_eq!(
        emu.delete(&emu.conversation_path("support-2")).await.status,
        204
    );
    emu.get(&emu.conversation_path(&sid))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn the_flex_chat_service_path_addresses_the_same_conversations_and_another_service_is_404() {
    let emu = TestEmulator::start().await;
    let scoped_list = format!("/v1/Services/{}/Conversations", emu.service());
    let created = emu
        .post(&scoped_list, &[("UniqueName", "via-service")])
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let sid = created.sid();
    assert_eq!(
        created.json["url"],
        format!("{}{}", emu.url, emu.service_conversation_path(&sid))
    );
    let short = emu.get(&emu.conversation_path("via-service")).await;
    assert_eq!(short.sid(), sid);
    assert_eq!(
        short.json["url"],
        format!("{}/v1/Conversations/{sid}", emu.url)
    );

    emu.participant(&sid, "ada").await;
    let participants = emu
        .get(&format!(
            "{}/Participants",
            emu.service_conversation_path(&sid)
        ))
        .await;
    let first = &participants.json["participants"][0];
    assert_eq!(first["identity"], "ada");
    assert_eq!(
        first["chat_service_sid"],
        emu.service(),
        "service-scoped shape"
    );
    let short = emu
        .get(&format!("{}/Participants", emu.conversation_path(&sid)))
        .await;
    assert!(
        short.json["participants"][0]
            .get("chat_service_sid")
            .is_none()
    );

    let other = "IS00000000000000000000000000000000";
    for path in [
        format!("/v1/Services/{other}/Conversations"),
        format!("/v1/Services/{other}/Conversations/{sid}"),
        format!("/v1/Services/{other}/Conversations/{sid}/Messages"),
    ] {
        emu.get(&path).await.twilio_error(404, 20404);
    }
    emu.post(&format!("/v1/Services/{other}/Conversations"), &[])
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn conversations_are_listed_by_state_and_creation_date() {
    let emu = TestEmulator::start().await;
    let active = emu.conversation(&[]).await;
    let inactive = emu.conversation(&[("State", "inactive")]).await;
    let by_state = |state: &'static str| {
        let emu = &emu;
        async move {
            emu.get(&format!("/v1/Conversations?State={state}"))
                .await
                .json["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["sid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by_state("active").await, [active]);
    assert_eq!(by_state("inactive").await, [inactive]);
    assert!(by_state("closed").await.is_empty());

    let all = emu
        .get("/v1/Conversations?StartDate=2000-01-01&EndDate=2999-12-31")
        .await;
    assert_eq!(all.json["conversations"].as_array().unwrap().len(), 2);
    let none = emu.get("/v1/Conversations?EndDate=2000-01-01").await;
    assert!(none.json["conversations"].as_array().unwrap().is_empty());
    emu.get("/v1/Conversations?StartDate=yesterday")
        .await
        .twilio_error(400, 20001);
    emu.get("/v1/Conversations?State=initializing")
        .await
        .twilio_error(400, 20001);
}

#[tokio::test]
async fn participants_are_added_fetched_by_sid_or_identity_listed_and_removed() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[]).await;
    let participants = format!("{}/Participants", emu.conversation_path(&conversation));
    let added = emu
        .post(
            &participants,
            &[("Identity", "ada"), ("Attributes", r#"{"vip":true}"#)],
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.json);
    let sid = added.sid();
    assert!(sid.starts_with("MB"));
    assert_eq!(added.json["conversation_sid"], conversation);
    assert_eq!(added.json["messaging_binding"], Value::Null);
    assert_eq!(
        added.json["role_sid"],
        emu.bootstrap().channel_user_role_sid
    );
    assert_eq!(added.json["attributes"], r#"{"vip":true}"#);

    emu.post(&participants, &[("Identity", "ada")])
        .await
        .twilio_error(409, 50433);
    let refused = emu.post(&participants, &[]).await;
    refused.refused_naming("Identity");
    let sms = emu
        .post(
            &participants,
            &[
                ("MessagingBinding.Address", "+15558675310"),
                ("MessagingBinding.ProxyAddress", "+15017122661"),
            ],
        )
        .await;
    assert_eq!(sms.status, 201, "{}", sms.json);
    assert_eq!(sms.json["identity"], Value::Null);
    assert_eq!(
        sms.json["messaging_binding"],
        json!({"type": "sms", "address": "+15558675310", "proxy_address": "+15017122661"})
    );

    assert_eq!(emu.get(&format!("{participants}/ada")).await.sid(), sid);
    assert_eq!(
        emu.get(&format!("{participants}/{sid}")).await.json["identity"],
        "ada"
    );
    let listed = emu.get(&participants).await;
    assert_eq!(listed.json["participants"].as_array().unwrap().len(), 2);
    assert_eq!(emu.delete(&format!("{participants}/ada")).await.status, 204);
    emu.get(&format!("{participants}/{sid}"))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn messages_fire_on_message_added_only_with_the_webhook_header() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu.conversation(&[]).await;
    let participant = emu.participant(&conversation, "ada").await;
    let webhook = emu
        .conversation_webhook(&conversation, &receiver.url, &["onMessageAdded"])
        .await;
    let messages = format!("{}/Messages", emu.conversation_path(&conversation));

    let quiet = emu
        .post(&messages, &[("Author", "ada"), ("Body", "quiet")])
        .await;
    assert_eq!(quiet.status, 201, "{}", quiet.json);
    assert_eq!(quiet.json["index"], 0);
    assert_eq!(quiet.json["author"], "ada");
    assert_eq!(quiet.json["participant_sid"], participant);
    let loud = emu
        .customer_writes(&conversation, "ada", "Hi! <#1234>")
        .await;
    let system = emu.post(&messages, &[("Body", "notice")]).await;
    assert_eq!(system.json["author"], "system");
    assert_eq!(system.json["participant_sid"], Value::Null);

    // Deliveries of one conversation keep their order: once "loud" is in, "quiet" would be too.
    let hook = receiver
        .wait_for(|r| r.param("Body") == Some("Hi! <#1234>"))
        .await;
    let bodies: Vec<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.param("Body").map(str::to_owned))
        .collect();
    assert_eq!(bodies, ["Hi! <#1234>"]);
    assert_eq!(hook.param("EventType"), Some("onMessageAdded"));
    assert_eq!(hook.param("Source"), Some("API"));
    assert_eq!(hook.param("ClientIdentity"), None);
    assert_eq!(hook.param("ConversationSid"), Some(conversation.as_str()));
    assert_eq!(hook.param("ChatServiceSid"), Some(emu.service().as_str()));
    assert_eq!(hook.param("MessageSid"), Some(loud.sid().as_str()));
    assert_eq!(hook.param("Index"), Some("1"));
    assert_eq!(hook.param("Author"), Some("ada"));
    assert_eq!(hook.param("ParticipantSid"), Some(participant.as_str()));
    assert_eq!(hook.param("Attributes"), Some("{}"));
    assert_eq!(hook.param("WebhookSid"), Some(webhook.as_str()));
    assert_eq!(hook.param("RetryCount"), Some("0"));
    assert!(hook.param("DateCreated").unwrap().contains('.'));
    assert!(signed_with(&hook, &emu.emulator.credentials().auth_token));

    let listed = emu.get(&format!("{messages}?Order=desc")).await;
    let bodies: Vec<&Value> = listed.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(
        bodies,
        [&json!("notice"), &json!("Hi! <#1234>"), &json!("quiet")]
    );
    let fetched = emu.get(&format!("{messages}/{}", loud.sid())).await;
    assert_eq!(fetched.json["body"], "Hi! <#1234>");
    let refused = emu.post(&messages, &[("Author", "ada")]).await;
    refused.refused_naming("Body");
}

#[tokio::test]
async fn rest_updates_participants_and_deletes_fire_their_events_with_the_header() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu.conversation(&[("UniqueName", "room")]).await;
    emu.conversation_webhook(
        &conversation,
        &receiver.url,
        &[
            "onParticipantAdded",
            "onParticipantRemoved",
            "onConversationUpdated",
            "onConversationRemoved",
        ],
    )
    .await;
    let path = emu.conversation_path(&conversation);
    let participant = emu
        .post_hooked(&format!("{path}/Participants"), &[("Identity", "ada")])
        .await
        .sid();
    emu.post_hooked(
        &path,
        &[("FriendlyName", "Room"), ("Attributes", r#"{"a":1}"#)],
    )
    .await;
    emu.post(&path, &[("FriendlyName", "quiet")]).await;
    let removed = emu.delete_hooked(&format!("{path}/Participants/ada")).await;
    assert_eq!(removed.status, 204);
    assert_eq!(emu.delete_hooked(&path).await.status, 204);

    let all = receiver
        .wait_for_count(4, |r| r.param("EventType").is_some())
        .await;
    let types: Vec<&str> = all.iter().map(|r| r.param("EventType").unwrap()).collect();
    assert_eq!(
        types,
        [
            "onParticipantAdded",
            "onConversationUpdated",
            "onParticipantRemoved",
            "onConversationRemoved"
        ]
    );
    assert_eq!(all[0].param("ParticipantSid"), Some(participant.as_str()));
    assert_eq!(all[0].param("Identity"), Some("ada"));
    assert_eq!(all[1].param("FriendlyName"), Some("Room"));
    assert_eq!(all[1].param("UniqueName"), Some("room"));
    assert_eq!(all[1].param("Attributes"), Some(r#"{"a":1}"#));
    assert_eq!(all[1].param("State"), Some("active"));
    assert!(all[2].param("DateRemoved").is_some());
    assert!(all[3].param("DateRemoved").is_some());
    assert!(all.iter().all(|r| r.param("Source") == Some("API")));
}

#[tokio::test]
async fn a_sixth_scoped_webhook_is_refused_and_settings_are_checked() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[]).await;
    let webhooks = format!("{}/Webhooks", emu.conversation_path(&conversation));
    let created = emu
        .post(
            &webhooks,
            &[
                ("Target", "webhook"),
                ("Configuration.Url", "http://127.0.0.1:9/hook"),
                ("Configuration.Method", "get"),
                ("Configuration.Filters", "onMessageAdded"),
                ("Configuration.Filters", "onConversationStateUpdated"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert!(created.sid().starts_with("WH"));
    assert_eq!(created.json["target"], "webhook");
    assert_eq!(
        created.json["configuration"],
        json!({
            "url": "http://127.0.0.1:9/hook",
            "method": "get",
            "filters": ["onMessageAdded", "onConversationStateUpdated"],
        })
    );
    let upper = emu
        .post(
            &webhooks,
            &[
                ("Target", "webhook"),
                ("Configuration.Url", "http://127.0.0.1:9/hook"),
                ("Configuration.Method", "POST"),
            ],
        )
        .await;
    assert_eq!(
        upper.json["configuration"]["method"], "post",
        "answered in the API's case"
    );

    for (form, param) in [
        (vec![("Target", "carrier-pigeon")], "Target"),
        (vec![("Target", "webhook")], "Configuration.Url"),
        (vec![("Target", "studio")], "Configuration.FlowSid"),
        (
            vec![("Target", "webhook"), ("Configuration.Url", "ftp://x")],
            "Configuration.Url",
        ),
        (
            vec![
                ("Target", "webhook"),
                ("Configuration.Url", "http://127.0.0.1:9/hook"),
                ("Configuration.Method", "put"),
            ],
            "Configuration.Method",
        ),
        (
            vec![
                ("Target", "webhook"),
                ("Configuration.Url", "http://127.0.0.1:9/hook"),
                ("Configuration.Filters", "onMessageSent"),
            ],
            "Configuration.Filters",
        ),
        (
            vec![
                ("Target", "studio"),
                (
                    "Configuration.FlowSid",
                    "FW00000000000000000000000000000000",
                ),
            ],
            "Configuration.FlowSid",
        ),
    ] {
        let refused = emu.post(&webhooks, &form).await;
        refused.refused_naming(param);
    }
    let mut six = vec![
        ("Target", "trigger"),
        ("Configuration.Url", "http://127.0.0.1:9/t"),
    ];
    six.extend(["a", "b", "c", "d", "e", "f"].map(|w| ("Configuration.Triggers", w)));
    emu.post(&webhooks, &six).await.twilio_error(400, 50362);

    for _ in 0..3 {
        emu.conversation_webhook(
            &conversation,
            "http://127.0.0.1:9/hook",
            &["onMessageAdded"],
        )
        .await;
    }
    let listed = emu.get(&webhooks).await;
    assert_eq!(listed.json["webhooks"].as_array().unwrap().len(), 5);
    assert_eq!(listed.json["meta"]["page_size"], 5);
    emu.post(
        &webhooks,
        &[
            ("Target", "webhook"),
            ("Configuration.Url", "http://127.0.0.1:9/hook"),
        ],
    )
    .await
    .twilio_error(400, 50361);

    let fetched = emu.get(&format!("{webhooks}/{}", created.sid())).await;
    assert_eq!(fetched.json["configuration"]["method"], "get");
    assert_eq!(
        emu.delete(&format!("{webhooks}/{}", created.sid()))
            .await
            .status,
        204
    );
    emu.get(&format!("{webhooks}/{}", created.sid()))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn a_get_webhook_carries_its_params_in_the_query_and_is_signed_over_that_url() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu.conversation(&[]).await;
    emu.post(
        &format!("{}/Webhooks", emu.conversation_path(&conversation)),
        &[
            ("Target", "webhook"),
            ("Configuration.Url", &receiver.url),
            ("Configuration.Method", "get"),
            ("Configuration.Filters", "onMessageAdded"),
        ],
    )
    .await;
    emu.customer_writes(&conversation, "ada", "It's amazing & 100% true")
        .await;
    let hook = receiver
        .wait_for(|r| r.param("EventType") == Some("onMessageAdded"))
        .await;
    assert_eq!(hook.method, "GET");
    assert!(hook.url.starts_with(&receiver.url), "{}", hook.url);
    assert_eq!(hook.param("Body"), Some("It's amazing & 100% true"));
    let token = &emu.emulator.credentials().auth_token;
    assert!(signed_with(&hook, token), "signed over the full query URL");
    assert!(!signed_with(&hook, "another-token"));
}

#[tokio::test]
async fn a_trigger_webhook_gets_only_messages_holding_one_of_its_words() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu.conversation(&[]).await;
    let created = emu
        .post(
            &format!("{}/Webhooks", emu.conversation_path(&conversation)),
            &[
                ("Target", "trigger"),
                ("Configuration.Url", &receiver.url),
                ("Configuration.Triggers", "agent"),
            ],
        )
        .await;
    assert_eq!(created.json["configuration"]["triggers"], json!(["agent"]));
    emu.customer_writes(&conversation, "ada", "hello").await;
    emu.customer_writes(&conversation, "ada", "I want an AGENT")
        .await;
    let hit = receiver.wait_for(|r| r.param("Index") == Some("1")).await;
    assert_eq!(hit.param("EventType"), Some("onMessageAdded"));
    assert_eq!(
        receiver.requests().len(),
        1,
        "the first message held no trigger word"
    );
}

//! The Chat events REST calls fire with `X-Twilio-Webhook-Enabled: true`,
//! and the webhook kinds beside `webhook`.

mod common;

use common::{Receiver, TestEmulator, signed_with};

async fn channel_with_hook(emu: &TestEmulator, receiver: &Receiver, filters: &[&str]) -> String {
    let room = [("FriendlyName", "Room"), ("UniqueName", "room-1")];
    let channel = emu.chat_channel(&room).await;
    emu.channel_webhook(&channel, &receiver.url, filters, 0)
        .await;
    channel
}

#[tokio::test]
async fn rest_member_changes_fire_added_and_removed_with_the_api_reasons() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = channel_with_hook(&emu, &receiver, &["onMemberAdded", "onMemberRemoved"]).await;
    let members = format!("{}/Members", emu.channel_path(&channel));
    let member = emu
        .post_hooked(&members, &[("Identity", "ada")])
        .await
        .sid();
    let added = receiver
        .wait_for(|r| r.param("EventType") == Some("onMemberAdded"))
        .await;
    assert_eq!(added.param("Reason"), Some("ADDED"));
    assert_eq!(added.param("Source"), Some("API"));
    assert_eq!(added.param("MemberSid"), Some(member.as_str()));
    assert_eq!(
        added.param("RoleSid"),
        Some(emu.bootstrap().channel_user_role_sid.as_str())
    );

    let removed = emu.delete_hooked(&format!("{members}/ada")).await;
    assert_eq!(removed.status, 204);
    let gone = receiver
        .wait_for(|r| r.param("EventType") == Some("onMemberRemoved"))
        .await;
    assert_eq!(gone.param("Reason"), Some("REMOVED"));
    assert!(gone.param("DateRemoved").is_some());
}

#[tokio::test]
async fn updating_and_destroying_a_channel_fire_with_the_channel_params() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel =
        channel_with_hook(&emu, &receiver, &["onChannelUpdated", "onChannelDestroyed"]).await;
    emu.post_hooked(
        &emu.channel_path("room-1"),
        &[("Attributes", r#"{"status":"INACTIVE"}"#)],
    )
    .await;
    let updated = receiver
        .wait_for(|r| r.param("EventType") == Some("onChannelUpdated"))
        .await;
    assert_eq!(
        updated.param("Attributes"),
        Some(r#"{"status":"INACTIVE"}"#)
    );
    assert_eq!(updated.param("UniqueName"), Some("room-1"));
    assert_eq!(updated.param("FriendlyName"), Some("Room"));
    assert_eq!(updated.param("ChannelType"), Some("public"));
    assert_eq!(updated.param("CreatedBy"), Some("system"));

    let destroyed = emu.delete_hooked(&emu.channel_path(&channel)).await;
    assert_eq!(destroyed.status, 204);
    let last = receiver
        .wait_for(|r| r.param("EventType") == Some("onChannelDestroyed"))
        .await;
    assert_eq!(last.param("ChannelSid"), Some(channel.as_str()));
    assert!(last.param("DateDestroyed").is_some());
    assert!(signed_with(&last, &emu.emulator.credentials().auth_token));
}

#[tokio::test]
async fn a_trigger_webhook_gets_only_messages_holding_one_of_its_words() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu.chat_channel(&[]).await;
    let created = emu
        .add_channel_webhook(
            &channel,
            &[
                ("Type", "trigger"),
                ("Configuration.Url", &receiver.url),
                ("Configuration.Triggers", "help"),
                ("Configuration.Triggers", "agent"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(
        created.json["configuration"]["triggers"],
        serde_json::json!(["help", "agent"])
    );
    let no_words = emu
        .add_channel_webhook(
            &channel,
            &[("Type", "trigger"), ("Configuration.Url", &receiver.url)],
        )
        .await;
    no_words.refused_naming("Configuration.Triggers");

    emu.customer_says(&channel, "c", "hello there").await;
    emu.customer_says(&channel, "c", "I need HELP").await;
    let hit = receiver
        .wait_for(|r| r.param("Body") == Some("I need HELP"))
        .await;
    assert_eq!(hit.param("WebhookType"), Some("trigger"));
    assert_eq!(
        receiver.events("onMessageSent").len(),
        1,
        "the first message held no trigger word"
    );
}

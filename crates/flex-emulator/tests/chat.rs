//! Chat v2 resources: channels by SID or unique name, channel webhooks
//! (at most 5), members and users, in Twilio's shapes and error codes.

mod common;

use common::TestEmulator;

#[tokio::test]
async fn chat_channels_are_found_by_sid_or_unique_name_which_is_unique() {
    let emu = TestEmulator::start().await;
    let channels = format!("/v2/Services/{}/Channels", emu.service());
    let created = emu
        .post(
            &channels,
            &[
                ("UniqueName", "support-1"),
                ("FriendlyName", "Support"),
                ("Type", "private"),
            ],
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json["type"], "private");
    assert_eq!(created.json["attributes"], "{}");
    assert_eq!(
        created.json["links"]["messages"],
        format!("{}{}/Messages", emu.url, emu.channel_path(&created.sid()))
    );

    let by_name = emu.get(&emu.channel_path("support-1")).await;
    assert_eq!(by_name.sid(), created.sid());

    let duplicate = emu.post(&channels, &[("UniqueName", "support-1")]).await;
    duplicate.twilio_error(409, 50307);

    let private_only = emu.get(&format!("{channels}?Type=private")).await;
    assert_eq!(private_only.json["channels"].as_array().unwrap().len(), 1);
    let public_only = emu.get(&format!("{channels}?Type=public")).await;
    assert_eq!(public_only.json["channels"].as_array().unwrap().len(), 0);

    let updated = emu
        .post(
            &emu.channel_path("support-1"),
            &[("Attributes", r#"{"status":"ACTIVE"}"#)],
        )
        .await;
    assert_eq!(updated.json["attributes"], r#"{"status":"ACTIVE"}"#);

    assert_eq!(emu.delete(&emu.channel_path("support-1")).await.status, 204);
    emu.get(&emu.channel_path(&created.sid()))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn a_sixth_channel_webhook_is_refused() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let channel = emu.flex_channel(&flow, "cust", "Cust").await.sid();
    let listed = emu
        .get(&format!("{}/Webhooks", emu.channel_path(&channel)))
        .await;
    let hooks = listed.json["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "Flex put its studio webhook on the channel");
    assert_eq!(hooks[0]["type"], "studio");
    assert_eq!(
        hooks[0]["configuration"]["flow_sid"],
        emu.bootstrap().studio_flow_sid
    );

    for _ in 0..4 {
        emu.channel_webhook(&channel, "http://127.0.0.1:9/hook", &["onMessageSent"], 0)
            .await;
    }
    let sixth = emu
        .add_channel_webhook(
            &channel,
            &[
                ("Type", "webhook"),
                ("Configuration.Url", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    sixth.twilio_error(400, 50321);
    let listed = emu
        .get(&format!("{}/Webhooks", emu.channel_path(&channel)))
        .await;
    assert_eq!(listed.json["webhooks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn channel_webhooks_keep_repeated_filters_and_can_be_updated_and_deleted() {
    let emu = TestEmulator::start().await;
    let channel = emu.chat_channel(&[]).await;
    let sid = emu
        .channel_webhook(
            &channel,
            "http://127.0.0.1:9/a",
            &["onMessageSent", "onChannelUpdated"],
            2,
        )
        .await;
    let path = format!("{}/Webhooks/{sid}", emu.channel_path(&channel));
    let fetched = emu.get(&path).await;
    assert_eq!(
        fetched.json["configuration"],
        serde_json::json!({
            "url": "http://127.0.0.1:9/a", "method": "POST",
            "filters": ["onMessageSent", "onChannelUpdated"], "retry_count": 2
        })
    );
    let updated = emu
        .post(
            &path,
            &[
                ("Configuration.Filters", "onMemberAdded"),
                ("Configuration.Method", "GET"),
            ],
        )
        .await;
    assert_eq!(
        updated.json["configuration"]["filters"],
        serde_json::json!(["onMemberAdded"])
    );
    assert_eq!(updated.json["configuration"]["method"], "GET");
    let unknown = emu
        .post(&path, &[("Configuration.Filters", "onNothing")])
        .await;
    unknown.refused_naming("Configuration.Filters");
    assert_eq!(emu.delete(&path).await.status, 204);
    emu.get(&path).await.twilio_error(404, 20404);
}

#[tokio::test]
async fn members_and_users_follow_the_chat_shapes() {
    let emu = TestEmulator::start().await;
    let service = emu.service();
    let channel = emu
        .post(&format!("/v2/Services/{service}/Channels"), &[])
        .await
        .sid();
    let members = format!("{}/Members", emu.channel_path(&channel));
    let added = emu.post(&members, &[("Identity", "ada")]).await;
    assert_eq!(added.status, 201);
    assert_eq!(added.json["identity"], "ada");
    assert_eq!(
        added.json["role_sid"],
        emu.bootstrap().channel_user_role_sid
    );
    emu.post(&members, &[("Identity", "ada")])
        .await
        .twilio_error(409, 50404);
    emu.post(&members, &[("Identity", "grace")]).await;

    let only_grace = emu.get(&format!("{members}?Identity=grace")).await;
    assert_eq!(only_grace.json["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        emu.get(&emu.channel_path(&channel)).await.json["members_count"],
        2
    );

    assert_eq!(
        emu.delete(&format!("{members}/ada")).await.status,
        204,
        "by identity"
    );
    assert_eq!(
        emu.delete(&format!(
            "{members}/{}",
            only_grace.json["members"][0]["sid"].as_str().unwrap()
        ))
        .await
        .status,
        204
    );
    assert_eq!(
        emu.get(&members).await.json["members"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let users = format!("/v2/Services/{service}/Users");
    let user = emu
        .post(&users, &[("Identity", "ada"), ("FriendlyName", "Ada")])
        .await;
    assert_eq!(user.status, 201);
    assert!(user.sid().starts_with("US"));
    emu.post(&users, &[("Identity", "ada")])
        .await
        .twilio_error(409, 50201);
    assert_eq!(emu.get(&format!("{users}/ada")).await.sid(), user.sid());
    assert_eq!(
        emu.get(&format!("{users}/alice")).await.json["friendly_name"],
        "alice",
        "agents are chat users"
    );
}

//! Flex Interactions over REST: creating one routes a conversation (one
//! live interaction per conversation), its channel can be closed or parked,
//! channel participants can be added and updated, a conversation closed
//! elsewhere closes its channel; and a `Target=studio` scoped webhook to the
//! "Webchat Flow" routes on the first message only.

mod common;

use common::{Receiver, TestEmulator, attributes};
use serde_json::{Value, json};

#[tokio::test]
async fn an_interaction_makes_one_channel_a_customer_participant_and_the_task_answering_200() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[("FriendlyName", "Chat with Ada")]).await;
    emu.participant(&conversation, "customer-ada").await;
    let created = emu
        .interaction(
            &conversation,
            json!({"customerName": "Ada", "priorityLine": true}),
        )
        .await;
    assert_eq!(
        created.status, 200,
        "create answers 200, as the spec says: {}",
        created.json
    );
    let interaction = created.sid();
    assert!(interaction.starts_with("KD"));
    let channel = created.json["channel"]["sid"].as_str().unwrap().to_owned();
    assert!(channel.starts_with("UO"));
    assert_eq!(created.json["channel"]["type"], "chat");
    assert_eq!(
        created.json["channel"]["properties"]["media_channel_sid"],
        conversation
    );
    assert_eq!(
        created.json["url"],
        format!("{}/v1/Interactions/{interaction}", emu.url)
    );
    assert_eq!(
        created.json["links"]["channels"],
        format!("{}/v1/Interactions/{interaction}/Channels", emu.url)
    );
    let routing = &created.json["routing"]["properties"];
    let bootstrap = emu.bootstrap();
    assert_eq!(routing["workspace_sid"], bootstrap.workspace_sid);
    assert_eq!(routing["workflow_sid"], bootstrap.workflow_sid);
    assert_eq!(routing["task_channel_unique_name"], "chat");
    let task_attributes: Value =
        serde_json::from_str(routing["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(
        task_attributes,
        json!({
            "customerName": "Ada",
            "priorityLine": true,
            "conversationSid": conversation,
            "flexInteractionSid": interaction,
            "flexInteractionChannelSid": channel,
            "channelType": "chat",
            "name": "customer-ada",
        })
    );

    let fetched = emu.get(&format!("/v1/Interactions/{interaction}")).await;
    assert_eq!(fetched.json["routing"]["properties"]["sid"], routing["sid"]);
    assert_eq!(
        fetched.json["routing"]["reservation"]["worker_sid"],
        bootstrap.agents[0].worker_sid
    );
    let updated = emu
        .post(
            &format!("/v1/Interactions/{interaction}"),
            &[("WebhookTtid", "flex_interactionwebhook_1")],
        )
        .await;
    assert_eq!(updated.json["webhook_ttid"], "flex_interactionwebhook_1");
    let channels = emu
        .get(&format!("/v1/Interactions/{interaction}/Channels"))
        .await;
    let listed = channels.json["channels"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sid"], channel);
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(listed[0]["interaction_sid"], interaction);
    let participants = emu
        .get(&format!(
            "/v1/Interactions/{interaction}/Channels/{channel}/Participants"
        ))
        .await;
    assert_eq!(participants.json["participants"][0]["type"], "customer");
    assert!(
        participants.json["participants"][0]["sid"]
            .as_str()
            .unwrap()
            .starts_with("UT")
    );
}

#[tokio::test]
async fn without_routing_an_interaction_takes_the_bootstrapped_workflow_and_the_conversation_name()
{
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[("FriendlyName", "Walk-in")]).await;
    let channel = json!({"type": "web", "initiated_by": "api", "properties": {"media_channel_sid": conversation}});
    let created = emu
        .post("/v1/Interactions", &[("Channel", &channel.to_string())])
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    let properties = &created.json["routing"]["properties"];
    assert_eq!(properties["workflow_sid"], emu.bootstrap().workflow_sid);
    assert_eq!(properties["task_channel_unique_name"], "chat");
    let task_attributes: Value =
        serde_json::from_str(properties["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(task_attributes["name"], "Walk-in");
    assert_eq!(task_attributes["channelType"], "web");
}

#[tokio::test]
async fn one_live_interaction_per_conversation_and_bad_channels_or_routing_are_refused() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[]).await;
    assert_eq!(emu.interaction(&conversation, json!({})).await.status, 200);
    let second = emu.interaction(&conversation, json!({})).await;
    let message = second.twilio_error(400, 20001)["message"].as_str().unwrap();
    assert!(
        message.contains("Channel") && message.contains("already"),
        "{message}"
    );

    let fresh = emu.conversation(&[]).await;
    let channel = |value: Value| value.to_string();
    for (form, param) in [
        (vec![], "Channel"),
        (vec![("Channel", "not json".to_owned())], "Channel"),
        (
            vec![(
                "Channel",
                channel(json!({"type": "chat", "initiated_by": "customer"})),
            )],
            "Channel",
        ),
        (
            vec![(
                "Channel",
                channel(
                    json!({"type": "fax", "initiated_by": "customer", "properties": {"media_channel_sid": fresh}}),
                ),
            )],
            "Channel",
        ),
        (
            vec![(
                "Channel",
                channel(
                    json!({"type": "voice", "initiated_by": "customer", "properties": {"media_channel_sid": fresh}}),
                ),
            )],
            "Channel",
        ),
        (
            vec![(
                "Channel",
                channel(json!({"type": "chat", "properties": {"media_channel_sid": fresh}})),
            )],
            "Channel",
        ),
        (
            vec![(
                "Channel",
                channel(
                    json!({"type": "chat", "initiated_by": "customer", "properties": {"media_channel_sid": "CH00000000000000000000000000000000"}}),
                ),
            )],
            "Channel",
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = emu.post("/v1/Interactions", &form).await;
        refused.refused_naming(param);
    }
    let good_channel = channel(
        json!({"type": "chat", "initiated_by": "customer", "properties": {"media_channel_sid": fresh}}),
    );
    for routing in [
        json!({"properties": {"workspace_sid": "WS00000000000000000000000000000000"}}),
        json!({"properties": {"workflow_sid": "WW00000000000000000000000000000000"}}),
        json!({"properties": {"task_channel_unique_name": "pigeon"}}),
        json!({"properties": {"attributes": [1, 2]}}),
        json!({"properties": {"priority": "high"}}),
        json!({"properties": "nope"}),
    ] {
        let refused = emu
            .post(
                "/v1/Interactions",
                &[
                    ("Channel", &good_channel),
                    ("Routing", &routing.to_string()),
                ],
            )
            .await;
        let message = refused.twilio_error(400, 20001)["message"]
            .as_str()
            .unwrap();
        assert!(message.contains("Routing"), "{routing}: {message}");
    }
    assert!(
        emu.tasks_for_conversation(&fresh).await.is_empty(),
        "nothing was routed"
    );

    emu.post(&emu.conversation_path(&fresh), &[("State", "closed")])
        .await;
    emu.post("/v1/Interactions", &[("Channel", &good_channel)])
        .await
        .twilio_error(400, 45354);
    emu.get("/v1/Interactions/KD00000000000000000000000000000000")
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn closing_the_interaction_channel_over_rest_closes_the_conversation_and_wraps_the_task() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (conversation, interaction, channel, task) =
        emu.routed_conversation(&receiver.url, "customer-ada").await;
    emu.accept(&task).await;
    let path = format!("/v1/Interactions/{interaction}/Channels/{channel}");
    let closed = emu.post(&path, &[("Status", "closed")]).await;
    assert_eq!(closed.status, 200, "{}", closed.json);
    assert_eq!(closed.json["status"], "closed");
    assert_eq!(closed.json["type"], "chat");
    let hook = receiver
        .wait_for(|r| r.param("StateTo") == Some("closed"))
        .await;
    assert_eq!(hook.param("StateFrom"), Some("active"));
    assert_eq!(hook.param("Reason"), Some("EVENT"));
    assert_eq!(hook.param("Source"), Some("API"));
    assert_eq!(
        emu.get(&emu.conversation_path(&conversation)).await.json["state"],
        "closed"
    );
    emu.task_reaches(&task, "completed").await;
    let state = emu.state().await;
    assert_eq!(state["reservations"][0]["reservation_status"], "completed");

    let again = emu.post(&path, &[("Status", "closed")]).await;
    again.refused_naming("closed");
    emu.post(&path, &[("Status", "open")])
        .await
        .twilio_error(400, 20001);
}

#[tokio::test]
async fn parking_a_channel_needs_routing_closed_completes_the_task_and_makes_the_conversation_inactive()
 {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (conversation, interaction, channel, task) =
        emu.routed_conversation(&receiver.url, "customer-ada").await;
    emu.accept(&task).await;
    let path = format!("/v1/Interactions/{interaction}/Channels/{channel}");
    let refused = emu.post(&path, &[("Status", "inactive")]).await;
    refused.refused_naming("Routing");
    emu.post(
        &path,
        &[("Status", "inactive"), ("Routing", r#"{"status":"open"}"#)],
    )
    .await
    .twilio_error(400, 20001);

    let parked = emu
        .post(
            &path,
            &[
                ("Status", "inactive"),
                ("Routing", r#"{"status":"closed"}"#),
            ],
        )
        .await;
    assert_eq!(parked.status, 200, "{}", parked.json);
    assert_eq!(parked.json["status"], "inactive");
    assert_eq!(
        emu.task_status(&task).await,
        "completed",
        "Routing closed completes at once"
    );
    let hook = receiver
        .wait_for(|r| r.param("StateTo") == Some("inactive"))
        .await;
    assert_eq!(hook.param("Reason"), Some("EVENT"));
    assert_eq!(
        emu.get(&emu.conversation_path(&conversation)).await.json["state"],
        "inactive"
    );
}

#[tokio::test]
async fn a_conversation_closed_by_the_api_closes_its_channel_and_cancels_a_task_not_yet_accepted() {
    let emu = TestEmulator::start().await;
    let (conversation, interaction, channel, task) = emu
        .routed_conversation("http://127.0.0.1:9/hook", "customer-ada")
        .await;
    emu.reservation_of(&task).await;
    emu.post(
        &emu.conversation_path(&conversation),
        &[("State", "closed")],
    )
    .await;
    let fetched = emu
        .get(&format!(
            "/v1/Interactions/{interaction}/Channels/{channel}"
        ))
        .await;
    assert_eq!(fetched.json["status"], "closed");
    assert_eq!(emu.task_status(&task).await, "canceled");
    let state = emu.state().await;
    assert_eq!(state["reservations"][0]["reservation_status"], "canceled");
    assert_eq!(state["agents"][0]["load"], 0);
}

#[tokio::test]
async fn channel_participants_are_added_listed_and_an_agent_in_wrapup_wraps_the_task() {
    let emu = TestEmulator::start().await;
    let (_, interaction, channel, task) = emu
        .routed_conversation("http://127.0.0.1:9/hook", "customer-ada")
        .await;
    emu.accept(&task).await;
    let participants = format!("/v1/Interactions/{interaction}/Channels/{channel}/Participants");
    let added = emu
        .post(
            &participants,
            &[
                ("Type", "external"),
                ("MediaProperties", r#"{"identity":"translator"}"#),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.json);
    assert_eq!(added.json["type"], "external");
    assert_eq!(added.json["channel_sid"], channel);
    assert_eq!(added.json["interaction_sid"], interaction);
    for (form, param) in [
        (vec![("MediaProperties", "{}")], "Type"),
        (vec![("Type", "external")], "MediaProperties"),
        (vec![("Type", "robot"), ("MediaProperties", "{}")], "Type"),
        (
            vec![("Type", "external"), ("MediaProperties", "[1]")],
            "MediaProperties",
        ),
    ] {
        let refused = emu.post(&participants, &form).await;
        refused.refused_naming(param);
    }
    let listed = emu.get(&participants).await;
    let kinds: Vec<&Value> = listed.json["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["type"])
        .collect();
    assert_eq!(
        kinds,
        [&json!("customer"), &json!("agent"), &json!("external")]
    );
    let agent = listed.json["participants"][1]["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let wrapup = emu
        .post(&format!("{participants}/{agent}"), &[("Status", "wrapup")])
        .await;
    assert_eq!(wrapup.status, 200, "{}", wrapup.json);
    assert_eq!(wrapup.json["routing_properties"]["task_sid"], task);
    emu.task_reaches(&task, "completed").await;
    emu.post(&format!("{participants}/{agent}"), &[("Status", "gone")])
        .await
        .twilio_error(400, 20001);
    emu.post(
        &format!("{participants}/UT00000000000000000000000000000000"),
        &[("Status", "closed")],
    )
    .await
    .twilio_error(404, 20404);
}

#[tokio::test]
async fn a_studio_webhook_to_the_webchat_flow_makes_one_task_on_the_first_fired_message_only() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[]).await;
    emu.participant(&conversation, "customer-ada").await;
    let flow = emu.bootstrap().studio_flow_sid.clone();
    let webhook = emu
        .post(
            &format!("{}/Webhooks", emu.conversation_path(&conversation)),
            &[("Target", "studio"), ("Configuration.FlowSid", &flow)],
        )
        .await;
    assert_eq!(webhook.status, 201, "{}", webhook.json);
    assert_eq!(webhook.json["target"], "studio");
    assert_eq!(webhook.json["configuration"], json!({"flow_sid": flow}));

    let messages = format!("{}/Messages", emu.conversation_path(&conversation));
    emu.post(
        &messages,
        &[("Author", "customer-ada"), ("Body", "no header")],
    )
    .await;
    assert!(
        emu.tasks_for_conversation(&conversation).await.is_empty(),
        "a message without the header fires nothing"
    );
    emu.customer_writes(&conversation, "customer-ada", "first")
        .await;
    emu.customer_writes(&conversation, "customer-ada", "second")
        .await;
    let tasks = emu.tasks_for_conversation(&conversation).await;
    assert_eq!(
        tasks.len(),
        1,
        "later messages of the execution make nothing"
    );
    let task_attributes = attributes(&tasks[0]);
    assert_eq!(task_attributes["name"], "customer-ada");
    assert_eq!(task_attributes["channelType"], "chat");
    assert!(
        task_attributes["flexInteractionSid"]
            .as_str()
            .unwrap()
            .starts_with("KD")
    );
    assert_eq!(tasks[0]["task_channel_unique_name"], "chat");
    let state = emu.state().await;
    assert_eq!(state["interactions"].as_array().unwrap().len(), 1);
    let execution = &state["studio_executions"][0];
    assert_eq!(execution["flow_sid"], flow);
    assert_eq!(execution["status"], "active");
    assert_eq!(
        execution["context"]["widgets"]["SendToFlex"]["TaskSid"],
        tasks[0]["sid"]
    );

    let task = tasks[0]["sid"].as_str().unwrap();
    emu.accept(task).await;
    emu.as_agent("alice", &format!("tasks/{task}/end"), None)
        .await;
    let state = emu.state().await;
    assert_eq!(state["studio_executions"][0]["status"], "ended");
}

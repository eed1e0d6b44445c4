//! What a new Flex account holds, found the way `flexbridge provision` finds
//! it: by listing (with the spec's `FriendlyName` filter where it has one)
//! and fetching — the Conversations service, the TaskRouter workspace and
//! its task channels, the Studio flow. An unknown SID is Twilio's 404 (code
//! 20404).

mod common;

use common::TestEmulator;

#[tokio::test]
async fn the_flex_chat_service_is_the_conversations_service_listed_and_fetched() {
    let emu = TestEmulator::start().await;
    let service = emu.service();

    let listed = emu.get("/v1/Services").await;
    let fetched = emu.get(&format!("/v1/Services/{service}")).await;

    assert_eq!(listed.json["meta"]["key"], "services");
    assert_eq!(listed.listed("sid"), [service.as_str()]);
    assert_eq!(listed.listed("friendly_name"), ["Flex Chat Service"]);
    assert_eq!(fetched.status, 200, "{}", fetched.json);
    assert_eq!(fetched.json, listed.json["services"][0]);
    let url = format!("{}/v1/Services/{service}", emu.url);
    assert_eq!(fetched.json["url"], url);
    assert_eq!(
        fetched.json["links"]["conversations"],
        format!("{url}/Conversations")
    );
    let conversations = emu
        .get(fetched.json["links"]["conversations"].as_str().unwrap())
        .await;
    assert_eq!(conversations.status, 200, "{}", conversations.json);
}

#[tokio::test]
async fn the_workspace_is_listed_and_found_by_its_friendly_name() {
    let emu = TestEmulator::start().await;
    let workspace = emu.bootstrap().workspace_sid.clone();

    let all = emu.get("/v1/Workspaces").await;
    let named = emu
        .get("/v1/Workspaces?FriendlyName=Flex%20Task%20Assignment")
        .await;
    let other = emu.get("/v1/Workspaces?FriendlyName=Elsewhere").await;

    assert_eq!(all.json["meta"]["key"], "workspaces");
    assert_eq!(all.listed("sid"), [workspace.as_str()]);
    assert_eq!(named.listed("sid"), [workspace.as_str()]);
    assert_eq!(named.listed("friendly_name"), ["Flex Task Assignment"]);
    let page_url = named.json["meta"]["url"].as_str().unwrap_or_default();
    assert!(
        page_url.contains("FriendlyName=Flex+Task+Assignment"),
        "{page_url}"
    );
    assert!(other.listed("sid").is_empty(), "{}", other.json);
}

#[tokio::test]
async fn the_workspace_has_the_task_channels_flex_makes() {
    let emu = TestEmulator::start().await;
    let bootstrap = emu.bootstrap().clone();
    let path = format!("/v1/Workspaces/{}/TaskChannels", bootstrap.workspace_sid);

    let listed = emu.get(&path).await;

    assert_eq!(listed.json["meta"]["key"], "channels");
    assert_eq!(
        listed.listed("unique_name"),
        ["default", "voice", "chat", "sms", "video", "email"]
    );
    assert_eq!(
        listed.listed("friendly_name"),
        [
            "Default",
            "Voice",
            "Programmable Chat",
            "SMS",
            "Video",
            "Email"
        ]
    );
    let sids = listed.listed("sid");
    assert!(sids.iter().all(|sid| sid.starts_with("TC")), "{sids:?}");
    assert_eq!(sids[2], bootstrap.chat_task_channel_sid);
    let chat = &listed.json["channels"][2];
    assert_eq!(chat["workspace_sid"], bootstrap.workspace_sid);
    assert_eq!(
        chat["url"],
        format!("{}{path}/{}", emu.url, bootstrap.chat_task_channel_sid)
    );
}

#[tokio::test]
async fn a_task_channel_is_fetched_by_sid_or_unique_name() {
    let emu = TestEmulator::start().await;
    let bootstrap = emu.bootstrap().clone();
    let path = format!("/v1/Workspaces/{}/TaskChannels", bootstrap.workspace_sid);

    let by_sid = emu
        .get(&format!("{path}/{}", bootstrap.chat_task_channel_sid))
        .await;
    let by_name = emu.get(&format!("{path}/chat")).await;

    assert_eq!(by_sid.status, 200, "{}", by_sid.json);
    assert_eq!(by_sid.json["unique_name"], "chat");
    assert_eq!(by_sid.json["friendly_name"], "Programmable Chat");
    assert_eq!(by_name.json, by_sid.json);
}

#[tokio::test]
async fn the_webchat_flow_is_listed_and_fetched_with_its_send_to_flex_step() {
    let emu = TestEmulator::start().await;
    let bootstrap = emu.bootstrap().clone();

    let listed = emu.get("/v2/Flows").await;
    let fetched = emu
        .get(&format!("/v2/Flows/{}", bootstrap.studio_flow_sid))
        .await;

    assert_eq!(listed.json["meta"]["key"], "flows");
    assert_eq!(listed.listed("sid"), [bootstrap.studio_flow_sid.as_str()]);
    assert_eq!(listed.listed("friendly_name"), ["Webchat Flow"]);
    assert_eq!(listed.listed("status"), ["published"]);
    assert!(listed.json["flows"][0]["definition"].is_null());
    assert_eq!(fetched.status, 200, "{}", fetched.json);
    assert_eq!(fetched.json["friendly_name"], "Webchat Flow");
    let url = format!("{}/v2/Flows/{}", emu.url, bootstrap.studio_flow_sid);
    assert_eq!(fetched.json["url"], url);
    assert_eq!(
        fetched.json["links"]["executions"],
        format!("{url}/Executions")
    );
    let send_to_flex = &fetched.json["definition"]["states"][1];
    assert_eq!(send_to_flex["type"], "send-to-flex");
    assert_eq!(
        send_to_flex["properties"]["workflow"],
        bootstrap.workflow_sid
    );
    assert_eq!(
        send_to_flex["properties"]["channel"],
        bootstrap.chat_task_channel_sid
    );
}

#[tokio::test]
async fn unknown_services_workspaces_task_channels_and_flows_are_404() {
    let emu = TestEmulator::start().await;
    let workspace = emu.bootstrap().workspace_sid.clone();
    let missing_workspace = format!("WS{}", "0".repeat(32));

    for path in [
        format!("/v1/Services/IS{}", "0".repeat(32)),
        format!("/v1/Workspaces/{missing_workspace}/TaskChannels"),
        format!("/v1/Workspaces/{missing_workspace}/TaskChannels/chat"),
        format!(
            "/v1/Workspaces/{workspace}/TaskChannels/TC{}",
            "0".repeat(32)
        ),
        format!("/v1/Workspaces/{workspace}/TaskChannels/fax"),
        format!("/v2/Flows/FW{}", "0".repeat(32)),
    ] {
        emu.get(&path).await.twilio_error(404, 20404);
    }
}

#[test]
fn without_a_seed_every_emulator_is_a_new_account_and_a_seed_repeats_one() {
    use flex_emulator::{Emulator, EmulatorConfig};
    let account = |config: EmulatorConfig| {
        let emulator = Emulator::new(config);
        (
            emulator.credentials().account_sid.clone(),
            emulator.credentials().auth_token.clone(),
            emulator.bootstrap().chat_service_sid.clone(),
        )
    };

    let (first, second) = (
        account(EmulatorConfig::random()),
        account(EmulatorConfig::random()),
    );
    let (seeded, again) = (
        account(EmulatorConfig::from_seed(7)),
        account(EmulatorConfig::from_seed(7)),
    );

    assert_ne!(first.0, second.0);
    assert_ne!(first.1, second.1);
    assert_ne!(first.2, second.2);
    assert_eq!(seeded, again);
}

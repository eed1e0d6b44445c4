//! The REST surface answers like Twilio: auth, errors, pagination, shapes.

mod common;

use common::TestEmulator;
use serde_json::Value;

fn is_rest_timestamp(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let bytes = text.as_bytes();
    text.len() == 20
        && text.ends_with('Z')
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && text.chars().filter(char::is_ascii_digit).count() == 14
}

#[tokio::test]
async fn calls_without_valid_credentials_get_twilio_401_json() {
    let emu = TestEmulator::start().await;
    let url = format!("{}/v1/FlexFlows", emu.url);

    let anonymous = emu.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"Twilio API\""
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    assert_eq!(body["message"], "Authenticate");

    let credentials = emu.emulator.credentials();
    let wrong = emu
        .http
        .get(&url)
        .basic_auth(&credentials.account_sid, Some("not-the-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let with_key = emu
        .http
        .get(&url)
        .basic_auth(&credentials.api_key_sid, Some(&credentials.api_key_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_key.status(),
        200,
        "an API key SID + secret is a valid Basic pair"
    );
}

#[tokio::test]
async fn unknown_routes_and_unknown_sids_answer_404_with_code_20404() {
    let emu = TestEmulator::start().await;

    let route = emu.get("/v1/Nowhere").await;
    let error = route.twilio_error(404, 20404);
    assert_eq!(
        error["message"],
        "The requested resource /v1/Nowhere was not found"
    );

    let flow = emu
        .get(&format!("/v1/FlexFlows/FO{}", "0".repeat(32)))
        .await;
    flow.twilio_error(404, 20404);

    let channel = emu.get(&emu.channel_path("no-such-unique-name")).await;
    channel.twilio_error(404, 20404);

    let service = emu.get(&format!("/v2/Services/IS{}", "1".repeat(32))).await;
    service.twilio_error(404, 20404);
}

#[tokio::test]
async fn missing_required_parameters_are_named_in_a_400() {
    let emu = TestEmulator::start().await;
    let service = emu.service();

    let flow = emu
        .post(
            "/v1/FlexFlows",
            &[("ChatServiceSid", &service), ("ChannelType", "custom")],
        )
        .await;
    let error = flow.twilio_error(400, 20001);
    assert_eq!(
        error["message"],
        "Missing required parameter FriendlyName in the post body"
    );

    let studio_flow = emu.studio_flow().await;
    let channel = emu
        .post(
            "/v1/Channels",
            &[
                ("FlexFlowSid", &studio_flow),
                ("ChatUserFriendlyName", "A"),
                ("ChatFriendlyName", "B"),
            ],
        )
        .await;
    channel.refused_naming("Identity");

    let studio_without_flow = emu
        .post(
            "/v1/FlexFlows",
            &[
                ("FriendlyName", "x"),
                ("ChatServiceSid", &service),
                ("ChannelType", "custom"),
                ("IntegrationType", "studio"),
            ],
        )
        .await;
    studio_without_flow.refused_naming("Integration.FlowSid");

    let chat = emu.chat_channel(&[]).await;
    let members = emu
        .post(&format!("{}/Members", emu.channel_path(&chat)), &[])
        .await;
    members.refused_naming("Identity");
    let webhook = emu.add_channel_webhook(&chat, &[]).await;
    webhook.refused_naming("Type");
}

#[tokio::test]
async fn bad_parameter_values_are_named_in_a_400() {
    let emu = TestEmulator::start().await;
    let service = emu.service();
    let base = [("FriendlyName", "x"), ("ChatServiceSid", service.as_str())];

    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("ChannelType", "pigeon")], "ChannelType"),
        (
            &[("ChannelType", "custom"), ("Enabled", "maybe")],
            "Enabled",
        ),
        (
            &[
                ("ChannelType", "custom"),
                ("Integration.RetryCount", "many"),
            ],
            "Integration.RetryCount",
        ),
        (
            &[("ChannelType", "custom"), ("Integration.FlowSid", "FW123")],
            "Integration.FlowSid",
        ),
    ];
    for (extra, named) in cases {
        let mut form = base.to_vec();
        form.extend_from_slice(extra);
        let answer = emu.post("/v1/FlexFlows", &form).await;
        answer.refused_naming(named);
    }

    let channels = format!("/v2/Services/{service}/Channels");
    let attributes = emu.post(&channels, &[("Attributes", "{not json")]).await;
    attributes.refused_naming("Attributes");

    let header = emu
        .http
        .post(format!("{}{channels}", emu.url))
        .basic_auth(
            &emu.emulator.credentials().account_sid,
            Some(&emu.emulator.credentials().auth_token),
        )
        .header("X-Twilio-Webhook-Enabled", "perhaps")
        .form(&[("FriendlyName", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 400);
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_answers_405_json() {
    let emu = TestEmulator::start().await;
    let answer = emu.delete("/v1/FlexFlows").await;
    answer.twilio_error(405, 20004);
}

#[tokio::test]
async fn flex_flows_can_be_created_fetched_updated_filtered_and_deleted() {
    let emu = TestEmulator::start().await;
    let studio = emu.bootstrap().studio_flow_sid.clone();
    let created = emu
        .post(
            "/v1/FlexFlows",
            &[
                ("FriendlyName", "Webchat"),
                ("ChatServiceSid", &emu.service()),
                ("ChannelType", "custom"),
                ("IntegrationType", "studio"),
                ("Integration.FlowSid", &studio),
                ("Integration.RetryCount", "1"),
                ("Enabled", "true"),
            ],
        )
        .await;
    assert_eq!(created.status, 201);
    let sid = created.sid();
    assert!(sid.starts_with("FO") && sid.len() == 34);
    assert_eq!(
        created.json["integration"],
        serde_json::json!({"flow_sid": studio, "retry_count": 1})
    );
    assert_eq!(
        created.json["account_sid"],
        emu.emulator.credentials().account_sid
    );
    assert_eq!(
        created.json["url"],
        format!("{}/v1/FlexFlows/{sid}", emu.url)
    );
    assert!(
        is_rest_timestamp(&created.json["date_created"]),
        "{}",
        created.json["date_created"]
    );
    emu.flex_flow(&[
        ("IntegrationType", "studio"),
        ("Integration.FlowSid", &studio),
        ("FriendlyName", "Other"),
    ])
    .await;

    let fetched = emu.get(&format!("/v1/FlexFlows/{sid}")).await;
    assert_eq!(fetched.json, created.json);

    let updated = emu
        .post(
            &format!("/v1/FlexFlows/{sid}"),
            &[("FriendlyName", "Renamed"), ("Enabled", "false")],
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json["friendly_name"], "Renamed");
    assert_eq!(updated.json["enabled"], false);
    assert_eq!(
        updated.json["integration"]["flow_sid"], studio,
        "unsent fields are kept"
    );

    let filtered = emu.get("/v1/FlexFlows?FriendlyName=Renamed").await;
    assert_eq!(filtered.json["meta"]["key"], "flex_flows");
    let names: Vec<&Value> = filtered.json["flex_flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["sid"])
        .collect();
    assert_eq!(names, [&Value::String(sid.clone())]);
    assert!(
        filtered.json["meta"]["url"]
            .as_str()
            .unwrap()
            .contains("FriendlyName=Renamed")
    );

    let deleted = emu.delete(&format!("/v1/FlexFlows/{sid}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null);
    emu.get(&format!("/v1/FlexFlows/{sid}"))
        .await
        .twilio_error(404, 20404);
    assert_eq!(
        emu.get("/v1/FlexFlows").await.json["flex_flows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn pages_follow_next_page_url_verbatim_to_the_end() {
    let emu = TestEmulator::start().await;
    let channel = emu.chat_channel(&[]).await;
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    for n in 0..7 {
        let body = format!("message {n}");
        assert_eq!(emu.post(&messages, &[("Body", &body)]).await.status, 201);
    }

    let mut url = format!("{messages}?PageSize=3");
    let mut bodies = Vec::new();
    let mut pages = 0;
    loop {
        let page = emu.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.json);
        let meta = &page.json["meta"];
        assert_eq!(meta["key"], "messages");
        assert_eq!(meta["page"], pages);
        assert_eq!(meta["page_size"], 3);
        assert!(
            meta["first_page_url"]
                .as_str()
                .unwrap()
                .starts_with(&emu.url)
        );
        if pages == 0 {
            assert_eq!(meta["previous_page_url"], Value::Null);
        } else {
            assert!(meta["previous_page_url"].is_string());
        }
        for message in page.json["messages"].as_array().unwrap() {
            bodies.push(message["body"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match meta["next_page_url"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}{messages}?", emu.url)),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|n| format!("message {n}")).collect();
    assert_eq!(bodies, expected);

    let descending = emu.get(&format!("{messages}?Order=desc&PageSize=2")).await;
    assert_eq!(descending.json["messages"][0]["body"], "message 6");
    assert!(
        descending.json["meta"]["next_page_url"]
            .as_str()
            .unwrap()
            .contains("Order=desc")
    );

    let clamped = emu.get(&format!("{messages}?PageSize=1000")).await;
    assert_eq!(
        clamped.json["meta"]["page_size"], 100,
        "Chat pages hold at most 100"
    );
    emu.get(&format!("{messages}?PageSize=0"))
        .await
        .twilio_error(400, 20001);
    emu.get(&format!("{messages}?PageToken=garbage"))
        .await
        .twilio_error(400, 20001);
}

#[tokio::test]
async fn taskrouter_starts_like_a_new_flex_account() {
    let emu = TestEmulator::start().await;
    let bootstrap = emu.bootstrap().clone();
    let workspace = emu
        .get(&format!("/v1/Workspaces/{}", bootstrap.workspace_sid))
        .await;
    assert_eq!(workspace.json["friendly_name"], "Flex Task Assignment");
    let workflows = emu
        .get(&format!(
            "/v1/Workspaces/{}/Workflows",
            bootstrap.workspace_sid
        ))
        .await;
    assert_eq!(
        workflows.json["workflows"][0]["friendly_name"],
        "Assign to Anyone"
    );
    assert_eq!(
        workflows.json["workflows"][0]["sid"],
        bootstrap.workflow_sid
    );
    let workers = emu
        .get(&format!(
            "/v1/Workspaces/{}/Workers?Available=true",
            bootstrap.workspace_sid
        ))
        .await;
    let names: Vec<&str> = workers.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["friendly_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let service = emu
        .get(&format!("/v2/Services/{}", bootstrap.chat_service_sid))
        .await;
    assert_eq!(service.json["friendly_name"], "Flex Chat Service");
    emu.get(&format!("/v1/Workspaces/WS{}", "0".repeat(32)))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_undecodable_forms_400() {
    let emu = TestEmulator::start().await;
    let credentials = emu.emulator.credentials();
    let url = format!("{}/v1/FlexFlows", emu.url);
    let send = |body: Vec<u8>, content_type: &'static str| {
        emu.http
            .post(&url)
            .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let huge = send(
        vec![b'a'; 2 * 1024 * 1024],
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(huge.json::<Value>().await.unwrap()["status"], 413);

    let garbage = send(
        b"FriendlyName=%ff%fe%zz".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<Value>().await.unwrap()["code"], 20001);

    let json = send(br#"{"FriendlyName":"x"}"#.to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(json.status(), 400, "Twilio's REST API takes forms");
}

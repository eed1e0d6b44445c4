//! The emulator serves nothing the official specs do not declare.
//!
//! Static checks of the route table against the official specs in the
//! repository's `spec/twilio-oai/*.json` (or at `$TWILIO_OAI_DIR`): every
//! route's path, method and `operationId` exist; every parameter a handler
//! may read is declared for that operation (form body for POST, query
//! otherwise); the `X-Twilio-Webhook-Enabled` header is taken exactly where
//! declared; the spec's required parameters are accepted.
//!
//! Live checks, on a running emulator: each route answers the spec's success
//! status, with only fields the spec's response schema declares; a POST
//! without its required parameters is a 400 naming one of them. The
//! Conversations routes are checked in both URL families (default service
//! and `/v1/Services/{ChatServiceSid}`), whose shapes differ.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::TestEmulator;
use common::fixtures::Fixtures;
use flex_emulator::api::{Api, ROUTES, Route, Verb};
use serde_json::Value;

fn specs_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TWILIO_OAI_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/twilio-oai")
}

struct Specs(HashMap<&'static str, Value>);

impl Specs {
    fn load() -> Self {
        let dir = specs_dir();
        let files = [
            Api::Flex,
            Api::Chat,
            Api::Conversations,
            Api::TaskRouter,
            Api::Studio,
        ]
        .map(Api::spec_file);
        Self(
            files
                .into_iter()
                .map(|file| {
                    let text = std::fs::read_to_string(dir.join(file))
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    (
                        file,
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}")),
                    )
                })
                .collect(),
        )
    }

    fn spec(&self, route: &Route) -> &Value {
        &self.0[route.api.spec_file()]
    }

    fn operation(&self, route: &Route) -> &Value {
        let method = route.verb.as_str().to_ascii_lowercase();
        let operation = &self.spec(route)["paths"][route.path][method.as_str()];
        assert!(
            operation.is_object(),
            "{route:?} is not in {}",
            route.api.spec_file()
        );
        operation
    }

    /// Follows a `$ref` inside the route's spec file.
    fn resolve<'a>(&'a self, route: &Route, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let mut target = self.spec(route);
                for part in reference.trim_start_matches("#/").split('/') {
                    target = &target[part];
                }
                target
            }
            None => schema,
        }
    }

    fn parameters(&self, route: &Route, location: &str) -> BTreeSet<String> {
        self.operation(route)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == location)
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn form_schema(&self, route: &Route) -> &Value {
        &self.operation(route)["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    }

    fn form_params(&self, route: &Route) -> BTreeSet<String> {
        self.form_schema(route)["properties"]
            .as_object()
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn required_form_params(&self, route: &Route) -> Vec<String> {
        self.form_schema(route)["required"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one 2xx status the operation declares, and its JSON schema.
    fn success(&self, route: &Route) -> (u16, Option<&Value>) {
        let responses = self.operation(route)["responses"]
            .as_object()
            .expect("responses");
        let mut codes = responses.keys().filter(|code| code.starts_with('2'));
        let code = codes.next().expect("a 2xx response");
        assert!(
            codes.next().is_none(),
            "{route:?} declares several 2xx answers"
        );
        let schema = responses[code]["content"]["application/json"]["schema"]
            .as_object()
            .map(|_| {
                let schema = &responses[code]["content"]["application/json"]["schema"];
                self.resolve(route, schema)
            });
        (code.parse().expect("numeric status"), schema)
    }
}

#[test]
fn every_served_route_exists_in_the_specs_with_the_same_method_and_operation_id() {
    let specs = Specs::load();
    let mut seen = BTreeSet::new();
    for route in ROUTES.iter() {
        assert!(
            seen.insert((route.verb.as_str(), route.path)),
            "{route:?} is served twice"
        );
        let operation = specs.operation(route);
        assert_eq!(operation["operationId"], route.operation_id, "{route:?}");
    }
    assert!(ROUTES.len() >= 38, "the issue's REST subset is served");
}

#[test]
fn the_flex_conversations_operations_of_issue_4_are_served_in_both_url_families() {
    let served: BTreeSet<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
    let conversation_operations = [
        "CreateConversation",
        "ListConversation",
        "FetchConversation",
        "UpdateConversation",
        "DeleteConversation",
        "CreateConversationParticipant",
        "ListConversationParticipant",
        "FetchConversationParticipant",
        "DeleteConversationParticipant",
        "CreateConversationMessage",
        "ListConversationMessage",
        "FetchConversationMessage",
        "CreateConversationScopedWebhook",
        "ListConversationScopedWebhook",
        "FetchConversationScopedWebhook",
        "DeleteConversationScopedWebhook",
    ];
    for operation in conversation_operations {
        assert!(served.contains(operation), "{operation} is not served");
        let (verb, rest) = operation.split_at(operation.find("Conversation").unwrap_or(0));
        let scoped = format!("{verb}Service{rest}");
        assert!(served.contains(scoped.as_str()), "{scoped} is not served");
    }
    for operation in [
        "CreateInteraction",
        "FetchInteraction",
        "ListInteractionChannel",
        "FetchInteractionChannel",
        "UpdateInteractionChannel",
        "CreateInteractionChannelParticipant",
        "ListInteractionChannelParticipant",
        "UpdateInteractionChannelParticipant",
    ] {
        assert!(served.contains(operation), "{operation} is not served");
    }
}

/// What `flexbridge provision` finds a Flex account's resources with.
#[test]
fn what_provisioning_lists_and_fetches_is_served() {
    for (api, operation) in [
        (Api::Conversations, "ListService"),
        (Api::Conversations, "FetchService"),
        (Api::TaskRouter, "ListWorkspace"),
        (Api::TaskRouter, "FetchWorkspace"),
        (Api::TaskRouter, "ListWorkflow"),
        (Api::TaskRouter, "ListTaskChannel"),
        (Api::TaskRouter, "FetchTaskChannel"),
        (Api::Studio, "ListFlow"),
        (Api::Studio, "FetchFlow"),
    ] {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.api == api && r.operation_id == operation),
            "{api:?} {operation} is not served"
        );
    }
}

#[test]
fn every_accepted_parameter_is_declared_for_its_operation() {
    let specs = Specs::load();
    for route in ROUTES.iter() {
        let declared = match route.verb {
            Verb::Post => specs.form_params(route),
            Verb::Get | Verb::Delete => specs.parameters(route, "query"),
        };
        for param in route.params {
            assert!(
                declared.contains(*param),
                "{route:?} reads {param}, which the spec does not declare"
            );
        }
        let query = specs.parameters(route, "query");
        let paged = ["PageSize", "Page", "PageToken"]
            .iter()
            .all(|p| query.contains(*p));
        assert_eq!(
            route.page.is_some(),
            paged,
            "{route:?}: paging must match the spec"
        );
    }
}

#[test]
fn the_webhook_header_is_taken_exactly_where_the_spec_declares_it() {
    let specs = Specs::load();
    for route in ROUTES.iter() {
        let declared = specs
            .parameters(route, "header")
            .contains("X-Twilio-Webhook-Enabled");
        assert_eq!(route.webhook_header, declared, "{route:?}");
    }
}

#[test]
fn the_required_parameters_of_the_spec_are_accepted() {
    let specs = Specs::load();
    for route in ROUTES.iter().filter(|r| r.verb == Verb::Post) {
        for required in specs.required_form_params(route) {
            assert!(
                route.params.contains(&required.as_str()),
                "{route:?} ignores required {required}"
            );
        }
    }
}

/// Valid parameters for the operations that require some.
fn valid_form(fixtures: &Fixtures, route: &Route) -> Vec<(&'static str, String)> {
    match route.operation_id {
        "CreateFlexFlow" => vec![
            ("FriendlyName", "Another".into()),
            ("ChatServiceSid", fixtures.service.clone()),
            ("ChannelType", "custom".into()),
            ("IntegrationType", "studio".into()),
            ("Integration.FlowSid", fixtures.studio_flow.clone()),
        ],
        "CreateChannel" if route.api == Api::Flex => vec![
            ("FlexFlowSid", fixtures.flow.clone()),
            ("Identity", "someone-else".into()),
            ("ChatUserFriendlyName", "Someone".into()),
            ("ChatFriendlyName", "Chat".into()),
        ],
        "CreateChannelWebhook" => vec![
            ("Type", "webhook".into()),
            ("Configuration.Url", "http://127.0.0.1:9/x".into()),
        ],
        "CreateMember" => vec![("Identity", "new-member".into())],
        "CreateConversation" | "CreateServiceConversation" => vec![
            ("FriendlyName", "Spec".into()),
            ("Timers.Inactive", "PT1H".into()),
        ],
        "UpdateConversation" | "UpdateServiceConversation" => {
            vec![("Attributes", r#"{"spec":true}"#.into())]
        }
        "CreateConversationParticipant" | "CreateServiceConversationParticipant" => {
            vec![("Identity", "new-participant".into())]
        }
        "CreateConversationMessage" | "CreateServiceConversationMessage" => {
            vec![("Author", "someone".into()), ("Body", "hi".into())]
        }
        "CreateConversationScopedWebhook" | "CreateServiceConversationScopedWebhook" => vec![
            ("Target", "webhook".into()),
            ("Configuration.Url", "http://127.0.0.1:9/x".into()),
            ("Configuration.Method", "get".into()),
        ],
        "CreateInteraction" => vec![(
            "Channel",
            serde_json::json!({
                "type": "chat",
                "initiated_by": "customer",
                "properties": {"media_channel_sid": fixtures.unrouted_conversation},
            })
            .to_string(),
        )],
        "UpdateInteraction" => vec![("WebhookTtid", "flex_interactionwebhook_spec".into())],
        "CreateInteractionChannelParticipant" => {
            vec![("Type", "agent".into()), ("MediaProperties", "{}".into())]
        }
        "UpdateInteractionChannelParticipant" => vec![("Status", "wrapup".into())],
        "UpdateInteractionChannel" => vec![("Status", "closed".into())],
        "CreateUser" => vec![("Identity", "new-user".into())],
        _ => Vec::new(),
    }
}

/// Asserts that `body` only has fields `schema` declares (items of lists too).
fn assert_fields_declared(specs: &Specs, route: &Route, schema: &Value, body: &Value) {
    let properties = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{route:?}: no properties"));
    let body = body
        .as_object()
        .unwrap_or_else(|| panic!("{route:?}: answer is not an object"));
    for (key, value) in body {
        let declared = properties
            .get(key)
            .unwrap_or_else(|| panic!("{route:?} answers {key}, which the spec does not declare"));
        let declared = specs.resolve(route, declared);
        if key == "meta" {
            assert_fields_declared(specs, route, declared, value);
        } else if let (Some(items), Some(array)) = (declared.get("items"), value.as_array()) {
            let item_schema = specs.resolve(route, items);
            for item in array {
                assert_fields_declared(specs, route, item_schema, item);
            }
        }
    }
}

#[tokio::test]
async fn every_route_answers_the_spec_status_with_only_spec_fields() {
    let specs = Specs::load();
    let emu = TestEmulator::start().await;
    let fixtures = Fixtures::make(&emu).await;
    let mut ordered: Vec<&Route> = ROUTES.iter().filter(|r| r.verb != Verb::Delete).collect();
    ordered.extend(ROUTES.iter().rev().filter(|r| r.verb == Verb::Delete));
    for route in ordered {
        let path = fixtures.path(route);
        let answer = match route.verb {
            Verb::Get => emu.get(&path).await,
            Verb::Delete => emu.delete(&path).await,
            Verb::Post => {
                let required = specs.required_form_params(route);
                if !required.is_empty() {
                    let refused = emu.post(&path, &[]).await;
                    let message = refused.twilio_error(400, 20001)["message"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    assert!(
                        required.iter().any(|r| message.contains(r.as_str())),
                        "{route:?}: {message}"
                    );
                }
                let form = valid_form(&fixtures, route);
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                emu.post(&path, &form).await
            }
        };
        let (status, schema) = specs.success(route);
        assert_eq!(
            answer.status, status,
            "{route:?} at {path}: {}",
            answer.json
        );
        match schema {
            Some(schema) => assert_fields_declared(&specs, route, schema, &answer.json),
            None => assert_eq!(answer.json, Value::Null, "{route:?}: no body declared"),
        }
    }
}

//! No input panics the server: random methods, paths (real routes — Chat
//! era, Conversations in both URL families, Interactions — with real or
//! random SIDs, random segments, control paths), headers, forms built from
//! the real parameter names with random values (among them durations,
//! states, methods, event names and a live interaction `Channel`), random
//! bytes and oversized bodies. Every answer comes back, is never a 5xx (no
//! faults are injected), and every error is Twilio's error JSON.

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use common::TestEmulator;
use common::fixtures::Fixtures;
use flex_emulator::api::{MAX_BODY_BYTES, ROUTES, Verb};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::Value;

struct World {
    runtime: tokio::runtime::Runtime,
    emu: TestEmulator,
    fixtures: Fixtures,
    /// For oversized bodies, which the server answers (413) without reading
    /// them, so it closes that connection: never reuse it.
    unpooled: reqwest::Client,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (emu, fixtures) = runtime.block_on(async {
            let emu = TestEmulator::start().await;
            let fixtures = Fixtures::make(&emu).await;
            (emu, fixtures)
        });
        let unpooled = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        World {
            runtime,
            emu,
            fixtures,
            unpooled,
        }
    })
}

/// Every parameter name some route reads, plus a few it does not.
fn param_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ROUTES
        .iter()
        .flat_map(|r| r.params.iter().copied())
        .collect();
    names.extend(["PageSize", "Page", "PageToken", "Unknown", ""]);
    names.sort_unstable();
    names.dedup();
    names
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just(usize::MAX.to_string()),
        Just(format!("PT{}", usize::MAX)),
        Just("{}".to_owned()),
        Just("[1,2]".to_owned()),
        Just("custom".to_owned()),
        Just("studio".to_owned()),
        Just("task".to_owned()),
        Just("completed".to_owned()),
        Just("accepted".to_owned()),
        Just("http://127.0.0.1:9/x".to_owned()),
        Just("PT1S".to_owned()),
        Just("P1M".to_owned()),
        Just("closed".to_owned()),
        Just("inactive".to_owned()),
        Just("get".to_owned()),
        Just("onMessageAdded".to_owned()),
        Just(r#"{"status":"closed"}"#.to_owned()),
        Just(()).prop_map(|()| interaction_channel()),
        "[A-Z]{2}[0-9a-f]{32}",
        ".{0,40}",
    ]
}

/// A `Channel` naming a live fixture conversation (or a broken variant of it).
fn interaction_channel() -> String {
    let conversation = &world().fixtures.unrouted_conversation;
    serde_json::json!({
        "type": "chat",
        "initiated_by": "customer",
        "properties": {"media_channel_sid": conversation},
    })
    .to_string()
}

#[derive(Debug, Clone)]
enum Body {
    Form(Vec<(String, String)>),
    Bytes(Vec<u8>),
    Oversized,
}

fn body() -> impl Strategy<Value = Body> {
    let names = param_names();
    prop_oneof![
        12 => prop::collection::vec((prop::sample::select(names), value()), 0..8)
            .prop_map(|pairs| Body::Form(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        3 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        1 => Just(Body::Oversized),
    ]
}

/// A method and a path: mostly a real route (its own method, parameters
/// filled with live fixtures, sometimes a random last segment or another
/// method), else a control path or random segments with any method.
fn target() -> impl Strategy<Value = (reqwest::Method, String)> {
    let routes = (
        0..ROUTES.len(),
        prop::bool::weighted(0.85),
        prop::option::weighted(0.15, method()),
        "[A-Za-z0-9%._~-]{0,40}",
    )
        .prop_map(|(at, real, other_method, noise)| {
            let route = &ROUTES[at];
            let mut path = world().fixtures.path(route);
            if !real {
                let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
                let last = segments.len() - 1;
                segments[last] = noise;
                path = segments.join("/");
            }
            let own =
                reqwest::Method::from_bytes(route.verb.as_str().as_bytes()).expect("a method");
            (other_method.unwrap_or(own), path)
        });
    let control = prop::sample::select(vec![
        "/_emulator/state",
        "/_emulator/agents",
        "/_emulator/agents/alice",
        "/_emulator/agents/%ff%fe",
        "/_emulator/agents/alice/activity",
        "/_emulator/agents/bob/reservations/WR0/accept",
        "/_emulator/agents/alice/tasks/WT0/messages",
        "/_emulator/agents/alice/tasks/WT0/end",
        "/_emulator/webhooks",
        "/_emulator/nothing",
    ]);
    let control = (method(), control).prop_map(|(method, path)| (method, path.to_owned()));
    let noise = (
        method(),
        prop::collection::vec("[A-Za-z0-9%{}._~-]{0,12}", 0..6),
    )
        .prop_map(|(method, segments)| (method, format!("/{}", segments.join("/"))));
    prop_oneof![7 => routes, 2 => control, 1 => noise]
}

fn method() -> impl Strategy<Value = reqwest::Method> {
    prop::sample::select(vec![
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ])
}

fn is_twilio_error(json: &Value, status: u16) -> bool {
    json["status"] == status
        && json["code"].is_u64()
        && json["message"].is_string()
        && json["more_info"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://www.twilio.com/docs/errors/"))
}

/// One random request; returns its status.
fn one_request(
    ((method, path), body, authed, form_type, hooked): (
        (reqwest::Method, String),
        Body,
        bool,
        bool,
        Option<&str>,
    ),
) -> Result<u16, TestCaseError> {
    let world = world();
    let emu = &world.emu;
    let (bytes, oversized) = match &body {
        Body::Form(pairs) => (
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes(),
            false,
        ),
        Body::Bytes(bytes) => (bytes.clone(), false),
        Body::Oversized => (vec![b'a'; MAX_BODY_BYTES + 1024], true),
    };
    let (status, text) = world.runtime.block_on(async {
        let client = if oversized {
            &world.unpooled
        } else {
            &emu.http
        };
        let mut request = client
            .request(method.clone(), format!("{}{path}", emu.url))
            .body(bytes);
        if authed {
            let credentials = emu.emulator.credentials();
            request = request.basic_auth(&credentials.account_sid, Some(&credentials.auth_token));
        }
        if form_type {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        if let Some(value) = hooked {
            request = request.header("X-Twilio-Webhook-Enabled", value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| TestCaseError::fail(format!("unreadable body: {e}")))?;
        Ok::<_, TestCaseError>((status, text))
    })?;
    prop_assert!(status < 500, "{method} {path} answered {status}: {text}");
    if status >= 400 {
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{status} is not JSON ({e}): {text}")))?;
        prop_assert!(is_twilio_error(&json, status), "{method} {path}: {text}");
    }
    let known_post = method == reqwest::Method::POST
        && ROUTES
            .iter()
            .any(|r| r.verb == Verb::Post && world.fixtures.path(r) == path);
    if oversized && known_post {
        prop_assert_eq!(status, 413, "{} {}", method, path);
    }
    Ok(status)
}

#[test]
fn any_request_gets_an_answer_and_every_error_is_twilio_json() {
    let statuses = Mutex::new(BTreeMap::<u16, usize>::new());
    // Successes per family of the Flex Conversations routes.
    let families = ["/v1/Conversations", "/v1/Services/", "/v1/Interactions"];
    let reached = Mutex::new(BTreeMap::<&str, usize>::new());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 500,
        ..ProptestConfig::default()
    });
    let inputs = (
        target(),
        body(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.8),
        prop::option::of(prop::sample::select(vec!["true", "false", "maybe"])),
    );
    let outcome = runner.run(&inputs, |input| {
        let path = input.0.1.clone();
        let status = one_request(input)?;
        *statuses.lock().unwrap().entry(status).or_default() += 1;
        if let Some(family) = families.iter().find(|f| path.starts_with(**f))
            && status < 300
        {
            *reached.lock().unwrap().entry(family).or_default() += 1;
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }

    // The random requests reached real handlers, not just the front door…
    let seen = statuses.into_inner().unwrap();
    for status in [200, 201, 400, 401, 404, 405, 413] {
        assert!(seen.contains_key(&status), "no {status} among {seen:?}");
    }
    let reached = reached.into_inner().unwrap();
    for family in families {
        assert!(
            reached.contains_key(family),
            "no success under {family}: {reached:?}"
        );
    }
    // …and the server still works afterwards.
    let world = world();
    world.runtime.block_on(async {
        assert!(world.emu.state().await["account"]["sid"].is_string());
        assert_eq!(world.emu.get("/v1/FlexFlows").await.status, 200);
    });
}

//! Chat webhook forms → `FlexEvent`, including malformed forms.

use super::*;
use crate::core::ids::CustomerId;
use crate::flex::sid::FlexIdentity;

const CH: &str = "CH0123456789abcdef0123456789abcdef";
const IM: &str = "IM0123456789abcdef0123456789abcdef";

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn message_sent(source: &str, from: &str) -> Vec<(String, String)> {
    form(&[
        ("EventType", "onMessageSent"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("InstanceSid", "IS0123456789abcdef0123456789abcdef"),
        ("ChannelSid", CH),
        ("MessageSid", IM),
        ("Index", "3"),
        ("Body", "Hello, how can I help?"),
        ("From", from),
        ("Source", source),
        ("RetryCount", "0"),
    ])
}

#[test]
fn an_agent_message_becomes_an_agent_message_event_keyed_by_its_sid() {
    let event = parse_webhook(&message_sent("SDK", "alice")).unwrap();
    let FlexEvent::AgentMessage {
        header,
        message,
        index,
        author,
        body,
        media: None,
    } = event
    else {
        panic!("expected an agent message, got {event:?}");
    };
    assert_eq!(header.channel.as_str(), CH);
    assert_eq!(header.idempotency_key, format!("chat:message:{IM}"));
    assert_eq!(message.as_str(), IM);
    assert!(index.is_some(), "the webhook's Index is read");
    assert_eq!(
        (author.as_str(), body.as_str()),
        ("alice", "Hello, how can I help?")
    );
}

#[test]
fn our_own_message_coming_back_with_source_api_is_ignored() {
    let event = parse_webhook(&message_sent("API", "alice")).unwrap();
    assert!(matches!(event, FlexEvent::Ignored { .. }), "{event:?}");
}

#[test]
fn a_message_from_a_customer_identity_is_never_relayed_back() {
    let customer = FlexIdentity::for_customer(&CustomerId::generate());
    let event = parse_webhook(&message_sent("SDK", customer.as_str())).unwrap();
    assert!(matches!(event, FlexEvent::Ignored { .. }), "{event:?}");
}

#[test]
fn a_message_webhook_with_a_malformed_channel_sid_is_an_error_naming_it() {
    let mut params = message_sent("SDK", "alice");
    params[3].1 = "undefined".into();
    let err = parse_webhook(&params).unwrap_err();
    assert!(matches!(
        err,
        WebhookParseError::Malformed {
            param: "ChannelSid",
            ..
        }
    ));
    assert!(err.to_string().contains("ChannelSid"));
}

#[test]
fn a_message_webhook_without_a_message_sid_is_an_error() {
    let params: Vec<_> = message_sent("SDK", "alice")
        .into_iter()
        .filter(|(k, _)| k != "MessageSid")
        .collect();
    assert_eq!(
        parse_webhook(&params),
        Err(WebhookParseError::Missing("MessageSid"))
    );
}

#[test]
fn a_form_without_event_type_is_an_error() {
    assert_eq!(
        parse_webhook(&form(&[("ChannelSid", CH)])),
        Err(WebhookParseError::Missing("EventType"))
    );
    assert_eq!(
        parse_webhook(&[]),
        Err(WebhookParseError::Missing("EventType"))
    );
}

#[test]
fn channel_updated_with_status_inactive_ends_the_chat_once_per_channel() {
    let params = form(&[
        ("EventType", "onChannelUpdated"),
        ("ChannelSid", CH),
        ("Source", "SDK"),
        (
            "Attributes",
            r#"{"task_sid":"WT0123","from":"Ada","channel_type":"custom","status":"INACTIVE","long_lived":false}"#,
        ),
    ]);
    let event = parse_webhook(&params).unwrap();
    let FlexEvent::ChatEnded { header } = event else {
        panic!("expected chat end, got {event:?}");
    };
    assert_eq!(header.idempotency_key, format!("chat:ended:{CH}"));
}

#[test]
fn channel_updated_while_active_is_ignored() {
    let params = form(&[
        ("EventType", "onChannelUpdated"),
        ("ChannelSid", CH),
        ("Attributes", r#"{"status":"ACTIVE"}"#),
    ]);
    assert!(matches!(
        parse_webhook(&params),
        Ok(FlexEvent::Ignored { .. })
    ));
}

#[test]
fn channel_updated_with_attributes_that_are_not_json_is_an_error() {
    let params = form(&[
        ("EventType", "onChannelUpdated"),
        ("ChannelSid", CH),
        ("Attributes", "{status: INACTIVE"),
    ]);
    assert!(matches!(
        parse_webhook(&params),
        Err(WebhookParseError::Malformed {
            param: "Attributes",
            ..
        })
    ));
}

#[test]
fn an_agent_member_joining_is_agent_joined_and_the_customer_joining_is_ignored() {
    let agent = form(&[
        ("EventType", "onMemberAdded"),
        ("ChannelSid", CH),
        ("MemberSid", "MB0123456789abcdef0123456789abcdef"),
        ("Identity", "bob"),
        ("Reason", "ADDED"),
    ]);
    let FlexEvent::AgentJoined {
        agent: name,
        header,
    } = parse_webhook(&agent).unwrap()
    else {
        panic!("expected agent joined");
    };
    assert_eq!(name, "bob");
    assert!(
        header
            .idempotency_key
            .contains("MB0123456789abcdef0123456789abcdef")
    );

    let customer = FlexIdentity::for_customer(&CustomerId::generate());
    let own = form(&[
        ("EventType", "onMemberAdded"),
        ("ChannelSid", CH),
        ("Identity", customer.as_str()),
    ]);
    assert!(matches!(parse_webhook(&own), Ok(FlexEvent::Ignored { .. })));
}

#[test]
fn events_the_bridge_does_not_use_are_ignored_not_refused() {
    let params = form(&[("EventType", "onUserUpdated"), ("Identity", "x")]);
    assert!(matches!(
        parse_webhook(&params),
        Ok(FlexEvent::Ignored { .. })
    ));
}

#[test]
fn the_webhook_url_keeps_a_path_prefix_of_the_public_base_url() {
    let base = Url::parse("https://example.com/bridge/").unwrap();
    assert_eq!(
        join_url(&base, WEBHOOK_PATH).unwrap().as_str(),
        "https://example.com/bridge/webhooks/chat"
    );
    let origin = Url::parse("http://localhost:3000").unwrap();
    assert_eq!(
        join_url(&origin, WEBHOOK_PATH).unwrap().as_str(),
        "http://localhost:3000/webhooks/chat"
    );
}

proptest::proptest! {
    /// No form, however odd, makes the parser panic: it answers an event,
    /// an ignore, or an error naming a parameter.
    #[test]
    fn any_form_parses_to_an_event_or_an_error_without_panicking(
        pairs in proptest::collection::vec(
            (
                proptest::prop_oneof![
                    proptest::strategy::Just("EventType".to_owned()),
                    proptest::strategy::Just("ChannelSid".to_owned()),
                    proptest::strategy::Just("MessageSid".to_owned()),
                    proptest::strategy::Just("Attributes".to_owned()),
                    proptest::strategy::Just("Source".to_owned()),
                    proptest::strategy::Just("From".to_owned()),
                    proptest::strategy::Just("Identity".to_owned()),
                    ".{0,12}",
                ],
                proptest::prop_oneof![
                    proptest::strategy::Just("onMessageSent".to_owned()),
                    proptest::strategy::Just("onChannelUpdated".to_owned()),
                    proptest::strategy::Just("onMemberAdded".to_owned()),
                    proptest::strategy::Just(CH.to_owned()),
                    proptest::strategy::Just(IM.to_owned()),
                    proptest::strategy::Just(r#"{"status":"INACTIVE"}"#.to_owned()),
                    ".{0,40}",
                ],
            ),
            0..12,
        )
    ) {
        let _ = parse_webhook(&pairs);
    }
}

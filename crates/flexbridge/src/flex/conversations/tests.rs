//! Conversations webhook forms → `FlexEvent`, timers, and the interaction
//! a conversation remembers.

use super::*;
use crate::core::ids::CustomerId;

const CH: &str = "CH0123456789abcdef0123456789abcdef";
const IM: &str = "IM0123456789abcdef0123456789abcdef";
const MB: &str = "MB0123456789abcdef0123456789abcdef";

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn message_added(author: &str, body: &str) -> Vec<(String, String)> {
    form(&[
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ChatServiceSid", "IS0123456789abcdef0123456789abcdef"),
        ("EventType", "onMessageAdded"),
        ("Source", "SDK"),
        ("ClientIdentity", author),
        ("ConversationSid", CH),
        ("MessageSid", IM),
        ("Index", "2"),
        ("Author", author),
        ("Body", body),
        ("Attributes", "{}"),
        ("RetryCount", "0"),
    ])
}

#[test]
fn a_message_by_an_agent_is_an_agent_message_keyed_by_its_sid() {
    let event = parse_webhook(&message_added("alice", "How can I help?")).unwrap();

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
    assert_eq!(header.event_type, "onMessageAdded");
    assert_eq!(
        header.idempotency_key,
        format!("conversations:message:{IM}")
    );
    assert_eq!(message.as_str(), IM);
    assert!(index.is_some(), "the webhook's Index is read");
    assert_eq!(
        (author.as_str(), body.as_str()),
        ("alice", "How can I help?")
    );
}

#[test]
fn the_customers_own_message_coming_back_is_ignored_whatever_its_source() {
    let customer = FlexIdentity::for_customer(&CustomerId::generate());
    let mut params = message_added(customer.as_str(), "hello");
    params[3].1 = "API".into();

    let event = parse_webhook(&params).unwrap();

    assert!(matches!(event, FlexEvent::Ignored { .. }), "{event:?}");
}

#[test]
fn a_message_without_a_body_is_ignored() {
    let event = parse_webhook(&message_added("alice", "  ")).unwrap();
    assert!(matches!(event, FlexEvent::Ignored { .. }), "{event:?}");
}

#[test]
fn a_message_with_a_malformed_conversation_sid_or_no_author_is_an_error_naming_it() {
    let mut params = message_added("alice", "hi");
    params[5].1 = "undefined".into();
    assert!(matches!(
        parse_webhook(&params),
        Err(WebhookParseError::Malformed {
            param: "ConversationSid",
            ..
        })
    ));
    let params: Vec<_> = message_added("alice", "hi")
        .into_iter()
        .filter(|(k, _)| k != "Author")
        .collect();
    assert_eq!(
        parse_webhook(&params),
        Err(WebhookParseError::Missing("Author"))
    );
}

#[test]
fn state_closed_ends_the_chat_once_per_conversation_and_other_states_are_ignored() {
    let state = |to: &str| {
        form(&[
            ("EventType", "onConversationStateUpdated"),
            ("ConversationSid", CH),
            ("StateFrom", "active"),
            ("StateTo", to),
            ("Reason", "EVENT"),
            ("Source", "SDK"),
        ])
    };

    let FlexEvent::ChatEnded { header } = parse_webhook(&state("closed")).unwrap() else {
        panic!("expected a chat end");
    };
    assert_eq!(header.idempotency_key, format!("conversations:ended:{CH}"));
    for other in ["inactive", "active", "initializing"] {
        assert!(
            matches!(parse_webhook(&state(other)), Ok(FlexEvent::Ignored { .. })),
            "{other}"
        );
    }
}

#[test]
fn an_agent_participant_joining_is_agent_joined_and_the_customer_or_an_sms_number_is_ignored() {
    let joined = |identity: Option<&str>| {
        let mut pairs = vec![
            ("EventType", "onParticipantAdded"),
            ("ConversationSid", CH),
            ("ParticipantSid", MB),
            ("Source", "SDK"),
        ];
        if let Some(identity) = identity {
            pairs.push(("Identity", identity));
        }
        parse_webhook(&form(&pairs))
    };

    let Ok(FlexEvent::AgentJoined { header, agent }) = joined(Some("bob")) else {
        panic!("expected agent joined");
    };
    assert_eq!(agent, "bob");
    assert_eq!(
        header.idempotency_key,
        format!("conversations:participant:{CH}:{MB}")
    );
    let customer = FlexIdentity::for_customer(&CustomerId::generate());
    assert!(matches!(
        joined(Some(customer.as_str())),
        Ok(FlexEvent::Ignored { .. })
    ));
    assert!(matches!(joined(None), Ok(FlexEvent::Ignored { .. })));
}

#[test]
fn events_the_bridge_does_not_use_are_ignored_and_a_form_without_event_type_is_an_error() {
    let params = form(&[
        ("EventType", "onConversationUpdated"),
        ("ConversationSid", CH),
    ]);
    assert!(matches!(
        parse_webhook(&params),
        Ok(FlexEvent::Ignored { .. })
    ));
    assert_eq!(
        parse_webhook(&[]),
        Err(WebhookParseError::Missing("EventType"))
    );
}

#[test]
fn timers_take_iso_8601_durations_of_weeks_days_hours_minutes_and_seconds() {
    for good in ["PT10M", "PT1H", "P1D", "P1W", "PT0.5S", "P1DT2H", "PT1H30M"] {
        assert_eq!(
            TimerDuration::parse(good).map(|t| t.as_str().to_owned()),
            Ok(good.to_owned()),
            "{good}"
        );
    }
    for bad in [
        "", "10M", "P", "PT", "P1M1D", "PT1M1H", "P1.5D", "PT5", "P1Y", "PT1M1M", "PTM",
    ] {
        assert!(TimerDuration::parse(bad).is_err(), "{bad}");
    }
    let zero = TimerDuration::parse("PT0S").unwrap_err();
    assert!(zero.contains("zero"), "{zero}");
}

#[test]
fn the_interaction_a_conversation_remembers_round_trips_through_its_flex_ref() {
    let interaction = InteractionRef {
        interaction: InteractionSid::parse("KD0123456789abcdef0123456789abcdef").unwrap(),
        channel: InteractionChannelSid::parse("UO0123456789abcdef0123456789abcdef").unwrap(),
    };
    let stored = FlexRef::parse(&interaction.to_flex_ref().to_text()).unwrap();

    assert_eq!(InteractionRef::from_flex_ref(&stored), Some(interaction));
    assert_eq!(
        InteractionRef::from_flex_ref(&FlexRef::new(serde_json::json!({"x": 1}))),
        None
    );
}

#[test]
fn the_webhook_url_is_the_public_base_url_plus_the_conversations_path() {
    let base = Url::parse("https://example.com/bridge/").unwrap();
    assert_eq!(
        join_url(&base, WEBHOOK_PATH).unwrap().as_str(),
        "https://example.com/bridge/webhooks/conversations"
    );
}

proptest::proptest! {
    /// No form, however odd, makes the parser panic.
    #[test]
    fn any_form_parses_to_an_event_or_an_error_without_panicking(
        pairs in proptest::collection::vec(
            (
                proptest::prop_oneof![
                    proptest::strategy::Just("EventType".to_owned()),
                    proptest::strategy::Just("ConversationSid".to_owned()),
                    proptest::strategy::Just("MessageSid".to_owned()),
                    proptest::strategy::Just("ParticipantSid".to_owned()),
                    proptest::strategy::Just("Author".to_owned()),
                    proptest::strategy::Just("Identity".to_owned()),
                    proptest::strategy::Just("StateTo".to_owned()),
                    proptest::strategy::Just("Body".to_owned()),
                    ".{0,12}",
                ],
                proptest::prop_oneof![
                    proptest::strategy::Just("onMessageAdded".to_owned()),
                    proptest::strategy::Just("onParticipantAdded".to_owned()),
                    proptest::strategy::Just("onConversationStateUpdated".to_owned()),
                    proptest::strategy::Just(CH.to_owned()),
                    proptest::strategy::Just(IM.to_owned()),
                    proptest::strategy::Just(MB.to_owned()),
                    proptest::strategy::Just("closed".to_owned()),
                    ".{0,40}",
                ],
            ),
            0..12,
        )
    ) {
        let _ = parse_webhook(&pairs);
    }

    /// Timer parsing never panics either.
    #[test]
    fn any_timer_text_parses_or_is_refused_without_panicking(text in "P?T?[0-9.WDHMSY]{0,12}") {
        let _ = TimerDuration::parse(&text);
    }
}

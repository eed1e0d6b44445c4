//! Twilio's identifiers, built only by `parse`: SIDs (two letters and 32
//! hex digits, the prefix fixed per resource; docs/twilio-reference.md §1),
//! TaskRouter task channel names, and the identity a customer has in Flex.
//!
//! The core keeps a conversation's channel and a message's id as opaque
//! [`RemoteChannel`] / [`RemoteMessage`]; the conversions here are where a
//! backend turns them back into SIDs (a malformed one is a bad answer from
//! Twilio, or a corrupt row, never a panic).

use std::fmt;

use crate::core::ids::{CustomerId, IdError, RemoteChannel, RemoteMessage, prefixed_id};

prefixed_id!(
    /// A file in Twilio's Media Content Service.
    MediaSid,
    "ME",
    "a media SID"
);
prefixed_id!(
    /// A Twilio account.
    AccountSid,
    "AC",
    "an account SID"
);
prefixed_id!(
    /// An API key, usable instead of the account SID for REST Basic auth.
    ApiKeySid,
    "SK",
    "an API key SID"
);
prefixed_id!(
    /// A Chat channel, or (Conversations backend) a conversation: both are CH.
    ChannelSid,
    "CH",
    "a channel SID"
);
prefixed_id!(
    /// A Chat or Conversations message.
    MessageSid,
    "IM",
    "a message SID"
);
prefixed_id!(
    /// A Flex Flow (the post's `FLEX_FLOW_SID`).
    FlexFlowSid,
    "FO",
    "a Flex Flow SID"
);
prefixed_id!(
    /// A Chat (or Conversations) service, e.g. "Flex Chat Service".
    ChatServiceSid,
    "IS",
    "a Chat Service SID"
);
prefixed_id!(
    /// A Studio flow, e.g. "Webchat Flow".
    StudioFlowSid,
    "FW",
    "a Studio Flow SID"
);
prefixed_id!(
    /// A TaskRouter task.
    TaskSid,
    "WT",
    "a task SID"
);
prefixed_id!(
    /// A Chat channel member, or a Conversations participant: both are MB.
    MemberSid,
    "MB",
    "a member SID"
);
prefixed_id!(
    /// A TaskRouter workspace ("Flex Task Assignment").
    WorkspaceSid,
    "WS",
    "a workspace SID"
);
prefixed_id!(
    /// A TaskRouter workflow ("Assign to Anyone").
    WorkflowSid,
    "WW",
    "a workflow SID"
);
prefixed_id!(
    /// A Flex interaction (Interactions API).
    InteractionSid,
    "KD",
    "an interaction SID"
);
prefixed_id!(
    /// A channel of a Flex interaction.
    InteractionChannelSid,
    "UO",
    "an interaction channel SID"
);

/// A TaskRouter task channel's unique name (`chat`, `default`, …): 1–64
/// characters of `A–Z a–z 0–9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskChannelName(String);

impl TaskChannelName {
    /// `chat`, Flex's task channel for chats.
    pub fn chat() -> Self {
        Self("chat".to_owned())
    }

    pub fn parse(s: &str) -> Result<Self, TaskChannelError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TaskChannelError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a task channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a task channel name must be 1–64 characters of A–Z, a–z, 0–9, `_` or `-`")]
pub struct TaskChannelError;

/// The identity a customer has on the Flex side: the Chat channel's
/// `Identity` and `Target` and every Chat message's `From`; the
/// Conversations participant's `Identity` and every message's `Author`.
/// Always the same string, derived from the customer id so it needs no
/// lookup either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlexIdentity(String);

impl FlexIdentity {
    const PREFIX: &'static str = "flexbridge_";

    pub fn for_customer(customer: &CustomerId) -> Self {
        Self(format!("{}{}", Self::PREFIX, customer.as_str()))
    }

    /// The customer behind an identity seen in a webhook, if it is one of
    /// ours (agents have other identities).
    pub fn customer_of(identity: &str) -> Option<CustomerId> {
        CustomerId::parse(identity.strip_prefix(Self::PREFIX)?).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&ChannelSid> for RemoteChannel {
    fn from(sid: &ChannelSid) -> Self {
        Self::new(sid.as_str())
    }
}

impl TryFrom<&RemoteChannel> for ChannelSid {
    type Error = IdError;

    fn try_from(channel: &RemoteChannel) -> Result<Self, IdError> {
        Self::parse(channel.as_str())
    }
}

impl From<&MessageSid> for RemoteMessage {
    fn from(sid: &MessageSid) -> Self {
        Self::new(sid.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_sids_need_their_prefix_and_32_hex_digits() {
        let ch = "CH0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            ChannelSid::parse(ch).map(|s| s.to_string()),
            Ok(ch.to_owned())
        );
        assert!(ChannelSid::parse("IM0123456789abcdef0123456789abcdef").is_err());
        assert!(ChannelSid::parse("CH0123").is_err());
        assert!(ChannelSid::parse("undefined").is_err());
        let err = MessageSid::parse("nope").unwrap_err();
        assert!(err.to_string().contains("IM"), "{err}");
    }

    #[test]
    fn a_channel_sid_round_trips_through_the_cores_opaque_id() {
        let sid = ChannelSid::parse("CH0123456789abcdef0123456789abcdef").unwrap();
        let remote = RemoteChannel::from(&sid);
        assert_eq!(ChannelSid::try_from(&remote), Ok(sid));
        let foreign = RemoteChannel::new("not-a-sid");
        assert!(ChannelSid::try_from(&foreign).is_err());
    }

    #[test]
    fn flex_identity_is_derived_from_and_maps_back_to_the_customer() {
        let customer = CustomerId::generate();
        let identity = FlexIdentity::for_customer(&customer);
        assert_eq!(FlexIdentity::customer_of(identity.as_str()), Some(customer));
        assert_eq!(FlexIdentity::customer_of("alice"), None);
        assert_eq!(FlexIdentity::customer_of("flexbridge_cus_bad"), None);
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_as_a_sid_or_identity_is_safe(text in ".{0,80}") {
            let _ = ChannelSid::parse(&text);
            let _ = TaskChannelName::parse(&text);
            let _ = FlexIdentity::customer_of(&text);
        }
    }
}

//! Where a conversation is in its lifecycle ([`ConversationState`]:
//! `active` ⇄ `inactive` → `closed`) and why it moved ([`StateReason`]).
//! Plain data: `lifecycle.rs` moves conversations, `timers.rs` says when.

/// A conversation's lifecycle state. `initializing` (spec enum) only exists
/// for ConversationWithParticipants, which the emulator does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConversationState {
    Active,
    Inactive,
    Closed,
}

impl ConversationState {
    pub const NAMES: [&'static str; 3] = ["active", "inactive", "closed"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Closed => "closed",
        }
    }
}

/// Why a conversation changed state (`Reason` of `onConversationStateUpdated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateReason {
    /// A REST update of the conversation (`State`).
    Api,
    /// `Timers.Inactive` or `Timers.Closed` elapsed.
    Timer,
    /// Something happened: a message reactivated it, the agent ended the
    /// chat, Flex closed the interaction channel.
    Event,
}

impl StateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "API",
            Self::Timer => "TIMER",
            Self::Event => "EVENT",
        }
    }
}

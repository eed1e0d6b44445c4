//! The conversation state machine: `opening → open → closed`.
//!
//! - `opening`: the conversation exists in the bridge (a customer wrote) and
//!   the outbox has an "open" step queued to create the Flex channel.
//! - `open`: Flex has the channel (its SID is known) and its webhooks.
//! - `closed`: the agent or the customer ended the chat, or the channel
//!   could not be created at all. Terminal: the customer's next message
//!   starts a new conversation. (When the customer ends it, the outbox still
//!   delivers what they sent before, then closes the Flex side.)
//!
//! A customer has at most one conversation that is not `closed` (a partial
//! unique index in the store enforces it). The store applies transitions
//! with conditional updates (`WHERE state IN (…sources…)`, built from
//! [`ConversationState::sources_of`] in `crate::store::conversations`), so
//! a repeated event cannot apply twice.

use std::fmt;

/// Where a conversation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationState {
    Opening,
    Open,
    Closed,
}

/// Why a conversation closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The agent ended the chat in Flex.
    AgentEnded,
    /// The customer ended the chat (`chat:end`).
    CustomerEnded,
    /// Flex refused to create the channel (a permanent error).
    OpenFailed,
    /// The channel no longer exists in Flex (deleted, or another account
    /// or emulator run).
    ChannelGone,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentEnded => "agent_ended",
            Self::CustomerEnded => "customer_ended",
            Self::OpenFailed => "open_failed",
            Self::ChannelGone => "channel_gone",
        }
    }

    /// Read back (from the store).
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::AgentEnded,
            Self::CustomerEnded,
            Self::OpenFailed,
            Self::ChannelGone,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == raw)
    }
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The Flex channel exists.
    Opened,
    Closed(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a conversation that is {from} cannot become {to}")]
pub struct InvalidTransition {
    pub from: ConversationState,
    pub to: ConversationState,
}

impl ConversationState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Opening, Self::Open, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The state a transition leads to, if it is allowed from here.
    pub fn apply(self, transition: Transition) -> Result<Self, InvalidTransition> {
        let to = transition.target();
        if Self::sources_of(transition).contains(&self) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }

    /// Every state from which `transition` is allowed.
    pub fn sources_of(transition: Transition) -> &'static [ConversationState] {
        match transition {
            Transition::Opened => &[Self::Opening],
            Transition::Closed(_) => &[Self::Opening, Self::Open],
        }
    }

    pub fn is_live(self) -> bool {
        self != Self::Closed
    }
}

impl Transition {
    pub fn target(self) -> ConversationState {
        match self {
            Self::Opened => ConversationState::Open,
            Self::Closed(_) => ConversationState::Closed,
        }
    }
}

impl fmt::Display for ConversationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationState::*;

    #[test]
    fn opening_becomes_open_then_closed() {
        let s = Opening.apply(Transition::Opened).unwrap();
        assert_eq!(s, Open);
        let s = s
            .apply(Transition::Closed(CloseReason::AgentEnded))
            .unwrap();
        assert_eq!(s, Closed);
    }

    #[test]
    fn opening_can_close_when_the_channel_cannot_be_created() {
        assert_eq!(
            Opening.apply(Transition::Closed(CloseReason::OpenFailed)),
            Ok(Closed)
        );
    }

    #[test]
    fn closed_is_terminal() {
        assert!(Closed.apply(Transition::Opened).is_err());
        let err = Closed
            .apply(Transition::Closed(CloseReason::AgentEnded))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a conversation that is closed cannot become closed"
        );
    }

    #[test]
    fn an_open_conversation_cannot_open_again() {
        assert!(Open.apply(Transition::Opened).is_err());
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in [Opening, Open, Closed] {
            assert_eq!(ConversationState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ConversationState::parse("OPEN"), None);
        assert!(Opening.is_live() && Open.is_live() && !Closed.is_live());
    }
}

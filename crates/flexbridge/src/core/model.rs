//! The domain model: customers, conversations and messages as the bridge
//! keeps them. The store persists these records and the customer side
//! renders them; neither adds meaning to them.

use super::attachment::Attachment;
use super::backend::{BackendName, FlexRef};
use super::conversation::{CloseReason, ConversationState};
use super::ids::{ConversationId, CustomerId, RemoteChannel, Seq, TokenHash};
use super::pre_engagement::PreEngagement;

/// A customer: an identity the bridge issued. Only the hash of its resume
/// token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub name: String,
    pub token_hash: TokenHash,
    /// What they told in the pre-engagement form besides their name.
    pub pre_engagement: PreEngagement,
}

/// One Flex conversation of one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    pub state: ConversationState,
    /// The backend that opens (opened) it and serves it to its end.
    pub backend: BackendName,
    /// Its channel in Flex, once the backend opened it.
    pub flex_channel: Option<RemoteChannel>,
    /// What that backend recorded when it opened it (opaque here).
    pub flex_ref: Option<FlexRef>,
    pub agent_name: Option<String>,
    /// Why it closed (`None` while live).
    pub close_reason: Option<CloseReason>,
    pub created_at: i64,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Customer,
    Agent,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

/// A stored message, as replayed to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: i64,
    pub seq: Seq,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub author: String,
    pub body: String,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    /// The file it carries (then `body` is the file's name).
    pub attachment: Option<Attachment>,
}

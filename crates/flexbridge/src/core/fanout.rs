//! The customer port: how the core reaches a customer's connected clients
//! (all of them, and only theirs). The customer side implements
//! [`Fanout`]; the core tells it only what is committed.

use super::conversation::CloseReason;
use super::ids::{CustomerId, Seq};
use super::model::{ConversationRecord, MessageRecord};

/// Something a customer's sockets should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A stored message (either direction).
    Message(MessageRecord),
    /// The conversation's state or agent changed.
    Conversation(ConversationRecord),
    AgentJoined {
        conversation: ConversationRecord,
        agent: String,
    },
    ChatEnded {
        conversation: ConversationRecord,
        reason: CloseReason,
    },
    /// The fate of a customer message in Flex.
    Delivery {
        seq: Seq,
        client_msg_id: String,
        outcome: DeliveryOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Failed(String),
    /// Not yet in Flex, and held back by something only the operator can
    /// fix (Flex refuses the bridge's credentials): kept, sent later.
    Delayed(String),
}

/// How the core reaches a customer's connected clients.
#[async_trait::async_trait]
pub trait Fanout: Send + Sync + 'static {
    async fn notify(&self, customer: &CustomerId, notice: Notice);
}

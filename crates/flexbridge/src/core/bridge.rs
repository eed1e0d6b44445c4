//! The bridge service: what the customer side, the Flex side and the
//! outbox call. Every method ends in the store first; only what is
//! committed is announced (through [`Fanout`], to the customer's sockets)
//! or acknowledged.
//!
//! - Customer side (this file): [`Bridge::register`] (and
//!   [`Bridge::register_customer`], with a pre-engagement form),
//!   [`Bridge::authenticate`], [`Bridge::session`], [`Bridge::history`],
//!   [`Bridge::transcript`], [`Bridge::send_message`], [`Bridge::end_chat`].
//! - Flex side (`inbound`): [`Bridge::apply_flex_event`], for webhooks
//!   and for what a re-attachment finds alike; agents are named here.
//! - The outbox's outcomes (`outcomes`): a conversation opened in Flex,
//!   a delivery settled, a job done, a conversation abandoned. The outbox
//!   only schedules; what an outcome means is decided here.

mod files;
mod inbound;
mod outcomes;

use std::sync::Arc;

pub use self::files::{FileError, UploadError};
pub use self::inbound::EventOutcome;
use super::attachment::{Attachment, AttachmentPolicy};
use super::backend::{BackendName, Backends};
use super::clock::Clock;
use super::conversation::CloseReason;
use super::fanout::{Fanout, Notice};
use super::ids::{
    ClientMessageId, ConversationId, CustomerId, CustomerName, MessageBody, ResumeToken, Seq,
};
use super::model::{ConversationRecord, CustomerRecord, MessageRecord};
use super::pre_engagement::{FieldErrors, FormAnswers, FormSpec, PreEngagement};
use super::rate_limit::{RateLimit, RateLimiter};
use super::storage::{Accepted, IncomingCustomerMessage, Storage, StorageError};
use super::work::Wakeups;

/// What a (re)connecting client needs.
#[derive(Debug, Clone)]
pub struct Session {
    pub customer: CustomerRecord,
    /// The live conversation, else the latest closed one, else none.
    pub conversation: Option<ConversationRecord>,
    /// Messages after the client's cursor, oldest first.
    pub messages: Vec<MessageRecord>,
}

/// A customer message, accepted.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub message: MessageRecord,
    /// `false` when this client message id was already stored (a retry).
    pub new: bool,
    /// The conversation this message started, if it started one.
    pub opened: Option<ConversationRecord>,
}

/// Errors of the core's API.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("too many messages; slow down")]
    RateLimited,
    #[error("the customer no longer exists")]
    UnknownCustomer,
    #[error("no such attachment, or another message carries it already")]
    UnknownAttachment,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Most messages a replay or history answer carries.
pub const MAX_REPLAY: u32 = 500;

/// The client message id of a question sent as the first message (one
/// per customer, like any client message id).
pub const QUESTION_MESSAGE_ID: &str = "pre-engagement-question";

/// A customer registered from the form.
#[derive(Debug)]
pub struct Registration {
    pub customer: CustomerRecord,
    pub token: ResumeToken,
    /// Their question, accepted as their first message.
    pub first_message: Option<SentMessage>,
}

/// Why a registration from the form failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the form has errors")]
    Form(FieldErrors),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// Most messages a transcript lists.
pub const MAX_TRANSCRIPT: u32 = 10_000;

/// One conversation of a customer and its messages, oldest first.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub conversation: ConversationRecord,
    pub messages: Vec<MessageRecord>,
}

/// What the core is made of: its two ports, its store, and its policies.
pub struct BridgeParts {
    pub storage: Arc<dyn Storage>,
    pub fanout: Arc<dyn Fanout>,
    /// The Flex backends; the current one opens new conversations.
    pub backends: Backends,
    /// Tells the outbox which conversation has new work.
    pub wakeups: Arc<Wakeups>,
    pub rate_limit: RateLimit,
    /// Where customers' rate limits are kept: in this process (a bridge
    /// alone), or with each customer in the storage (bridges sharing it,
    /// so the limit holds across them).
    pub limits_in_storage: bool,
    pub clock: Clock,
    /// The pre-engagement form customers register with.
    pub form: FormSpec,
    /// Which files customers may upload.
    pub attachments: AttachmentPolicy,
}

/// Where the customers' rate limits are kept (see [`BridgeParts`]).
enum Limits {
    InProcess(RateLimiter),
    InStorage(RateLimit),
}

/// The bridge service. Cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    fanout: Arc<dyn Fanout>,
    backends: Backends,
    wakeups: Arc<Wakeups>,
    limits: Limits,
    clock: Clock,
    form: FormSpec,
    attachments: AttachmentPolicy,
}

impl Bridge {
    pub fn new(parts: BridgeParts) -> Self {
        let BridgeParts {
            storage,
            fanout,
            backends,
            wakeups,
            rate_limit,
            limits_in_storage,
            clock,
            form,
            attachments,
        } = parts;
        let limits = if limits_in_storage {
            Limits::InStorage(rate_limit)
        } else {
            Limits::InProcess(RateLimiter::new(rate_limit))
        };
        Self {
            inner: Arc::new(Inner {
                storage,
                fanout,
                backends,
                wakeups,
                limits,
                clock,
                form,
                attachments,
            }),
        }
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The backend new conversations open with.
    fn current_backend(&self) -> BackendName {
        self.inner.backends.current().name()
    }

    /// Issues a new customer identity; the token is returned once.
    pub async fn register(
        &self,
        name: &CustomerName,
    ) -> Result<(CustomerRecord, ResumeToken), BridgeError> {
        self.register_customer(name, &PreEngagement::default())
            .await
    }

    /// [`Bridge::register`], keeping what the customer told in the
    /// pre-engagement form (checked by `core::pre_engagement::FormSpec`);
    /// it goes to Flex with their first conversation's "open".
    pub async fn register_customer(
        &self,
        name: &CustomerName,
        pre_engagement: &PreEngagement,
    ) -> Result<(CustomerRecord, ResumeToken), BridgeError> {
        let id = CustomerId::generate();
        let token = ResumeToken::generate();
        let customer = self
            .inner
            .storage
            .create_customer(&id, name, &token.hash(), pre_engagement, self.now())
            .await?;
        tracing::info!(customer = %customer.id, "customer registered");
        Ok((customer, token))
    }

    /// Registers a customer from the pre-engagement form: every field
    /// checked against the configured form (all that are wrong are
    /// named), the customer stored with their answers, and, when the form
    /// says so, their question accepted as their first message (announce
    /// it with [`Bridge::announce`] after answering).
    pub async fn register_form(
        &self,
        answers: &FormAnswers<'_>,
    ) -> Result<Registration, RegisterError> {
        let (name, details) = self
            .inner
            .form
            .check(answers)
            .map_err(RegisterError::Form)?;
        let (customer, token) = self.register_customer(&name, &details).await?;
        let first_message = match (&details.question, self.inner.form.question_first) {
            (Some(question), true) => {
                let id = ClientMessageId::parse(QUESTION_MESSAGE_ID)
                    .map_err(|e| BridgeError::Storage(StorageError::new(e.to_string())))?;
                let body = MessageBody::parse(question)
                    .map_err(|e| BridgeError::Storage(StorageError::new(e.to_string())))?;
                Some(self.send_message(&customer, &id, &body).await?)
            }
            _ => None,
        };
        Ok(Registration {
            customer,
            token,
            first_message,
        })
    }

    /// The customer a resume token belongs to.
    pub async fn authenticate(
        &self,
        token: &ResumeToken,
    ) -> Result<Option<CustomerRecord>, BridgeError> {
        Ok(self.inner.storage.customer_by_token(&token.hash()).await?)
    }

    /// Everything a client connecting with cursor `since` needs.
    pub async fn session(&self, customer: &CustomerId, since: Seq) -> Result<Session, BridgeError> {
        let storage = &self.inner.storage;
        let record = storage
            .customer(customer)
            .await?
            .ok_or(BridgeError::UnknownCustomer)?;
        let conversation = storage.latest_conversation(customer).await?;
        let messages = storage.messages_since(customer, since, MAX_REPLAY).await?;
        Ok(Session {
            customer: record,
            conversation,
            messages,
        })
    }

    /// A customer's messages after `since`, oldest first.
    pub async fn history(
        &self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, BridgeError> {
        Ok(self
            .inner
            .storage
            .messages_since(customer, since, limit.clamp(1, MAX_REPLAY))
            .await?)
    }

    /// One of the customer's conversations (`None`: their latest) with its
    /// messages, for a transcript; `None` when they have no such
    /// conversation (another customer's is as unknown as a missing one).
    pub async fn transcript(
        &self,
        customer: &CustomerId,
        conversation: Option<&ConversationId>,
    ) -> Result<Option<Transcript>, BridgeError> {
        let storage = &self.inner.storage;
        let found = match conversation {
            Some(id) => storage.conversation(id).await?,
            None => storage.latest_conversation(customer).await?,
        };
        let Some(conversation) = found.filter(|c| c.customer_id == *customer) else {
            return Ok(None);
        };
        let messages = storage
            .conversation_messages(&conversation.id, MAX_TRANSCRIPT)
            .await?;
        Ok(Some(Transcript {
            conversation,
            messages,
        }))
    }

    /// Accepts a customer message: committed (with its delivery queued)
    /// before this returns, so the caller may acknowledge it. Then call
    /// [`Bridge::announce`] (after the ack, so the client hears of its
    /// message's fate after its acceptance).
    pub async fn send_message(
        &self,
        customer: &CustomerRecord,
        client_msg_id: &ClientMessageId,
        body: &MessageBody,
    ) -> Result<SentMessage, BridgeError> {
        self.accept(customer, client_msg_id, body, None).await
    }

    /// [`Bridge::send_message`] of a message with a file or not.
    async fn accept(
        &self,
        customer: &CustomerRecord,
        client_msg_id: &ClientMessageId,
        body: &MessageBody,
        attachment: Option<Attachment>,
    ) -> Result<SentMessage, BridgeError> {
        let now = self.now();
        let rate_limit = match &self.inner.limits {
            Limits::InProcess(limiter) => {
                if !limiter.try_acquire(&customer.id, now) {
                    return self.rate_limited(customer, client_msg_id).await;
                }
                None
            }
            // Taken in the accept write, which answers a retry of a
            // stored message without taking one.
            Limits::InStorage(limit) => Some(*limit),
        };
        let accepted = self
            .inner
            .storage
            .accept_customer_message(IncomingCustomerMessage {
                customer: customer.id.clone(),
                author: customer.name.clone(),
                client_msg_id: client_msg_id.clone(),
                body: body.clone(),
                attachment,
                backend: self.current_backend(),
                rate_limit,
                now,
            })
            .await?;
        Ok(match accepted {
            Accepted::AttachmentCarried => return Err(BridgeError::UnknownAttachment),
            Accepted::RateLimited => return Err(BridgeError::RateLimited),
            Accepted::Duplicate { message } => {
                if let Limits::InProcess(limiter) = &self.inner.limits {
                    limiter.refund(&customer.id);
                }
                SentMessage {
                    message,
                    new: false,
                    opened: None,
                }
            }
            Accepted::New { message, opened } => {
                metrics::counter!("flexbridge_messages_in_total", "from" => "customer")
                    .increment(1);
                if let Some(conversation) = &opened {
                    tracing::info!(customer = %customer.id, conversation = %conversation.id, "conversation opening");
                }
                SentMessage {
                    message,
                    new: true,
                    opened,
                }
            }
        })
    }

    /// A message over the in-process limit: a retry of a stored message
    /// still gets its original ack (it stores nothing and costs nothing).
    async fn rate_limited(
        &self,
        customer: &CustomerRecord,
        client_msg_id: &ClientMessageId,
    ) -> Result<SentMessage, BridgeError> {
        let stored = self
            .inner
            .storage
            .customer_message(&customer.id, client_msg_id)
            .await?;
        match stored {
            Some(message) => Ok(SentMessage {
                message,
                new: false,
                opened: None,
            }),
            None => Err(BridgeError::RateLimited),
        }
    }

    /// Starts the delivery of an accepted message and tells the customer's
    /// sockets (every tab) about it. Nothing to do for a retried one. (If
    /// this never runs, e.g. a crash right after the commit, the outbox's
    /// sweep still delivers the message.)
    pub async fn announce(&self, customer: &CustomerId, sent: &SentMessage) {
        if !sent.new {
            return;
        }
        self.inner.wakeups.wake(&sent.message.conversation_id);
        if let Some(conversation) = &sent.opened {
            self.tell(customer, Notice::Conversation(conversation.clone()))
                .await;
        }
        self.tell(customer, Notice::Message(sent.message.clone()))
            .await;
    }

    /// The customer ends their live conversation: closed (committed)
    /// before this returns, its Flex side closed by the outbox after the
    /// messages queued before. `None` when there was none to end. Then call
    /// [`Bridge::announce_end`] (after the ack, as for a message).
    pub async fn end_chat(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<ConversationRecord>, BridgeError> {
        let closed = self
            .inner
            .storage
            .close_by_customer(customer, self.now())
            .await?;
        if let Some(conversation) = &closed {
            tracing::info!(%customer, conversation = %conversation.id, "chat ended by the customer");
        }
        Ok(closed)
    }

    /// Starts closing the ended conversation in Flex and tells every tab of
    /// the customer (`chat:ended`, `customer_ended`). Flex's own end, when
    /// it comes back as a webhook, finds it closed and tells no one again.
    pub async fn announce_end(&self, conversation: &ConversationRecord) {
        self.inner.wakeups.wake(&conversation.id);
        self.tell_changed(conversation.clone(), |conversation| Notice::ChatEnded {
            conversation,
            reason: CloseReason::CustomerEnded,
        })
        .await;
    }

    /// Tells `customer`'s sockets.
    async fn tell(&self, customer: &CustomerId, notice: Notice) {
        self.inner.fanout.notify(customer, notice).await;
    }

    /// Tells the customer about a conversation that changed: its new state,
    /// then the specific event.
    async fn tell_changed(
        &self,
        conversation: ConversationRecord,
        event: impl FnOnce(ConversationRecord) -> Notice,
    ) {
        let customer = conversation.customer_id.clone();
        self.tell(&customer, Notice::Conversation(conversation.clone()))
            .await;
        self.tell(&customer, event(conversation)).await;
    }
}

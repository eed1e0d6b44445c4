//! Customer messages in, replay and history out.
//!
//! [`Store::accept_customer_message`] is the bridge's commit point: in one
//! transaction (a group commit, shared with other customers' writes) it
//! finds or opens the customer's live conversation (queueing the "open"
//! step for a new one), gives the message the next `seq`, stores it and
//! queues its delivery. Only after the commit is the customer acked.
//! A retried client message id is found by the insert's unique constraint
//! (`UNIQUE(customer_id, client_msg_id)`), then read back; a customer
//! without a live conversation gets one (its "open" step queued first).

use sqlx::SqliteConnection;

use super::{
    ConversationRecord, Direction, MessageRecord, NewMessage, Store, StoreError, StoreResult,
    Target, conversation_columns, insert_message, message_columns,
};
use crate::core::conversation::ConversationState;
use crate::core::ids::{ClientMessageId, ConversationId, CustomerId, MessageBody, Seq};
use crate::flex::BackendKind;

/// A customer message to accept.
#[derive(Debug)]
pub struct IncomingCustomerMessage<'a> {
    pub customer: &'a CustomerId,
    /// The customer's display name, the message's author.
    pub author: &'a str,
    pub client_msg_id: &'a ClientMessageId,
    pub body: &'a MessageBody,
    /// Which Flex backend new conversations are opened with.
    pub backend: BackendKind,
    pub now: i64,
}

/// What accepting a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now and queued for delivery (in the conversation
    /// `message.conversation_id`).
    New {
        message: MessageRecord,
        /// The conversation this message started, if it started one.
        opened: Option<ConversationRecord>,
    },
    /// A message with this client message id was already stored: nothing
    /// new was written; this is the original.
    Duplicate { message: MessageRecord },
}

/// An [`IncomingCustomerMessage`] the store owns while it waits for its
/// group commit.
struct ToAccept {
    customer: CustomerId,
    author: String,
    client_msg_id: ClientMessageId,
    body: MessageBody,
    backend: BackendKind,
    now: i64,
}

impl Store {
    pub async fn accept_customer_message(
        &self,
        m: IncomingCustomerMessage<'_>,
    ) -> StoreResult<Accepted> {
        let owned = ToAccept {
            customer: m.customer.clone(),
            author: m.author.to_owned(),
            client_msg_id: m.client_msg_id.clone(),
            body: m.body.clone(),
            backend: m.backend,
            now: m.now,
        };
        self.write(owned, |m, conn| Box::pin(accept(conn, m))).await
    }

    /// A customer's messages with `seq > since`, oldest first, at most `limit`.
    pub async fn messages_since(
        &self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages
             WHERE customer_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(customer.as_str())
        .bind(since.0)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(MessageRecord::from_row).collect()
    }

    /// The customer's live conversation, else the most recent closed one.
    pub async fn latest_conversation(
        &self,
        customer: &CustomerId,
    ) -> StoreResult<Option<ConversationRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations
             WHERE customer_id = ?
             ORDER BY state = 'closed', created_at DESC LIMIT 1"
        ))
        .bind(customer.as_str())
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(ConversationRecord::from_row)
        .transpose()
    }

    pub async fn conversation(
        &self,
        id: &ConversationId,
    ) -> StoreResult<Option<ConversationRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(ConversationRecord::from_row)
        .transpose()
    }
}

/// Accepts one message inside a group commit; a duplicate writes nothing.
/// The common case (the customer's conversation is live) is one statement:
/// the insert takes the live conversation, and its unique client message
/// id is the duplicate check.
async fn accept(conn: &mut SqliteConnection, m: &ToAccept) -> StoreResult<Accepted> {
    if let Some(message) = insert_message(conn, m.new_message(Target::LiveOf(&m.customer))).await? {
        return Ok(Accepted::New {
            message,
            opened: None,
        });
    }
    // Nothing was written: a retry of a stored message (in any
    // conversation, even one closed since), or no live conversation.
    if let Some(message) = message_by_client_id(&mut *conn, m).await? {
        return Ok(Accepted::Duplicate { message });
    }
    let conversation = open_conversation(conn, m).await?;
    let inserted =
        insert_message(conn, m.new_message(Target::Conversation(&conversation.id))).await?;
    let message = inserted.ok_or_else(|| {
        StoreError::Corrupt("a new customer message conflicted with a stored one".into())
    })?;
    Ok(Accepted::New {
        message,
        opened: Some(conversation),
    })
}

impl ToAccept {
    fn new_message<'a>(&'a self, into: Target<'a>) -> NewMessage<'a> {
        NewMessage {
            into,
            direction: Direction::Customer,
            author: &self.author,
            body: self.body.as_str(),
            client_msg_id: Some(self.client_msg_id.as_str()),
            twilio_message_sid: None,
            delivery: Some("pending"),
            now: self.now,
        }
    }
}

/// Opens the customer's new conversation, its "open" step queued first.
async fn open_conversation(
    conn: &mut SqliteConnection,
    m: &ToAccept,
) -> StoreResult<ConversationRecord> {
    let conversation = ConversationRecord {
        id: ConversationId::generate(),
        customer_id: m.customer.clone(),
        state: ConversationState::Opening,
        backend: m.backend,
        flex_channel_sid: None,
        flex_ref: None,
        agent_name: None,
        created_at: m.now,
    };
    sqlx::query(
        "INSERT INTO conversations (id, customer_id, backend, state, created_at, updated_at)
         VALUES (?, ?, ?, 'opening', ?, ?)",
    )
    .bind(conversation.id.as_str())
    .bind(m.customer.as_str())
    .bind(m.backend.as_str())
    .bind(m.now)
    .bind(m.now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO outbox (conversation_id, kind, next_attempt_at, created_at)
         VALUES (?, 'open', ?, ?)",
    )
    .bind(conversation.id.as_str())
    .bind(m.now)
    .bind(m.now)
    .execute(&mut *conn)
    .await?;
    Ok(conversation)
}

/// The customer's stored message with `m`'s client message id.
async fn message_by_client_id(
    conn: &mut SqliteConnection,
    m: &ToAccept,
) -> StoreResult<Option<MessageRecord>> {
    sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE customer_id = ? AND client_msg_id = ?"
    ))
    .bind(m.customer.as_str())
    .bind(m.client_msg_id.as_str())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(MessageRecord::from_row)
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conversation::CloseReason;
    use crate::store::test_support::{customer, temp_store};

    fn incoming<'a>(
        customer: &'a CustomerId,
        id: &'a ClientMessageId,
        body: &'a MessageBody,
    ) -> IncomingCustomerMessage<'a> {
        IncomingCustomerMessage {
            customer,
            author: "Ada",
            client_msg_id: id,
            body,
            backend: BackendKind::Chat,
            now: 10,
        }
    }

    #[tokio::test]
    async fn the_first_message_opens_a_conversation_and_the_next_reuses_it() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("hello").unwrap();
        let (a, b) = (
            ClientMessageId::parse("a").unwrap(),
            ClientMessageId::parse("b").unwrap(),
        );

        let first = store
            .accept_customer_message(incoming(&cus, &a, &body))
            .await
            .unwrap();
        let second = store
            .accept_customer_message(incoming(&cus, &b, &body))
            .await
            .unwrap();

        let (
            Accepted::New {
                message: m1,
                opened: Some(c1),
            },
            Accepted::New {
                message: m2,
                opened: None,
            },
        ) = (first, second)
        else {
            panic!("expected a new conversation, then the same one");
        };
        assert_eq!((&m1.conversation_id, &m2.conversation_id), (&c1.id, &c1.id));
        assert_eq!((m1.seq, m2.seq), (Seq(1), Seq(2)));
        assert_eq!(store.outbox_depth().await.unwrap(), 3, "open + two sends");
    }

    #[tokio::test]
    async fn a_retried_client_message_id_is_stored_once_and_returns_the_original() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("hello").unwrap();
        let id = ClientMessageId::parse("retry-me").unwrap();

        let first = store
            .accept_customer_message(incoming(&cus, &id, &body))
            .await
            .unwrap();
        let again = store
            .accept_customer_message(incoming(&cus, &id, &body))
            .await
            .unwrap();

        let Accepted::New { message, .. } = first else {
            panic!("first is new")
        };
        assert_eq!(again, Accepted::Duplicate { message });
        assert_eq!(
            store.messages_since(&cus, Seq(0), 10).await.unwrap().len(),
            1
        );
        assert_eq!(store.outbox_depth().await.unwrap(), 2, "open + one send");
    }

    #[tokio::test]
    async fn a_retried_message_takes_no_seq_and_the_next_one_follows_the_original() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("hello").unwrap();
        let (a, b) = (
            ClientMessageId::parse("a").unwrap(),
            ClientMessageId::parse("b").unwrap(),
        );

        store
            .accept_customer_message(incoming(&cus, &a, &body))
            .await
            .unwrap();
        let again = store
            .accept_customer_message(incoming(&cus, &a, &body))
            .await
            .unwrap();
        let next = store
            .accept_customer_message(incoming(&cus, &b, &body))
            .await
            .unwrap();

        assert!(matches!(again, Accepted::Duplicate { .. }));
        let Accepted::New { message, .. } = next else {
            panic!("b is new");
        };
        assert_eq!(message.seq, Seq(2));
    }

    #[tokio::test]
    async fn a_retry_whose_original_is_in_a_closed_conversation_returns_it_and_opens_nothing() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("hello").unwrap();
        let id = ClientMessageId::parse("before-the-end").unwrap();
        let Accepted::New {
            message,
            opened: Some(conversation),
        } = store
            .accept_customer_message(incoming(&cus, &id, &body))
            .await
            .unwrap()
        else {
            panic!("the first is new");
        };
        store
            .outbox_abandon(&conversation.id, CloseReason::AgentEnded, "ended", 20)
            .await
            .unwrap();

        let retried = store
            .accept_customer_message(incoming(&cus, &id, &body))
            .await
            .unwrap();

        assert_eq!(retried, Accepted::Duplicate { message });
        let latest = store.latest_conversation(&cus).await.unwrap().unwrap();
        assert_eq!(latest.id, conversation.id, "no conversation was opened");
        assert_eq!(latest.state, ConversationState::Closed);
    }

    #[tokio::test]
    async fn concurrent_first_messages_share_one_conversation() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("hi").unwrap();
        let ids: Vec<ClientMessageId> = (0..5)
            .map(|i| ClientMessageId::parse(&format!("m{i}")).unwrap())
            .collect();

        let results = futures::future::join_all(
            ids.iter()
                .map(|id| store.accept_customer_message(incoming(&cus, id, &body))),
        )
        .await;

        let mut conversations: Vec<_> = results
            .into_iter()
            .map(|r| match r.unwrap() {
                Accepted::New { message, .. } => message.conversation_id,
                Accepted::Duplicate { .. } => panic!("no duplicates here"),
            })
            .collect();
        conversations.dedup();
        assert_eq!(conversations.len(), 1);
        let seqs: Vec<i64> = store
            .messages_since(&cus, Seq(0), 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.seq.0)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn replay_returns_only_messages_after_the_cursor() {
        let (store, _dir) = temp_store().await;
        let cus = customer(&store).await;
        let body = MessageBody::parse("x").unwrap();
        for i in 0..4 {
            let id = ClientMessageId::parse(&format!("m{i}")).unwrap();
            store
                .accept_customer_message(incoming(&cus, &id, &body))
                .await
                .unwrap();
        }
        let after_two = store.messages_since(&cus, Seq(2), 500).await.unwrap();
        assert_eq!(
            after_two.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(
            store.messages_since(&cus, Seq(0), 1).await.unwrap().len(),
            1
        );
        let other = customer(&store).await;
        assert!(
            store
                .messages_since(&other, Seq(0), 500)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

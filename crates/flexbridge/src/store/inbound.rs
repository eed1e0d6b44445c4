//! Applying what Flex tells us (webhooks) to the store, each in one
//! transaction (a group commit, shared with other writes) that also claims
//! the event's idempotency key: a repeated delivery finds its key taken and
//! changes nothing. An agent's message is keyed by its `MessageSid`, which
//! `messages` holds `UNIQUE`, so its insert is its claim (one statement);
//! other events claim their key in `webhook_receipts`. A webhook is
//! answered 2xx only after this commit.

use std::convert::Infallible;

use sqlx::SqliteConnection;

use super::{
    ConversationRecord, Direction, MessageRecord, NewMessage, Store, StoreResult, Target,
    conversation_columns, insert_message_row, parse_id,
};
use crate::core::conversation::{CloseReason, Transition};
use crate::core::ids::{ChannelSid, CustomerId, MessageSid};

/// What applying an inbound event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Applied(T),
    /// Already applied (same idempotency key, or the state already says so).
    Duplicate,
    /// No conversation has this channel: not ours, or from before a reset.
    UnknownChannel,
}

/// The keys every inbound event carries.
#[derive(Debug, Clone, Copy)]
pub struct EventKey<'a> {
    pub idempotency_key: &'a str,
    pub event_type: &'a str,
    pub channel: &'a ChannelSid,
    pub now: i64,
}

/// A message an agent wrote, stored for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAgentMessage {
    /// Whose conversation it went to (the room to tell).
    pub customer: CustomerId,
    pub message: MessageRecord,
}

/// An [`EventKey`] the store owns while it waits for its group commit.
struct Key {
    idempotency_key: String,
    event_type: String,
    channel: ChannelSid,
    now: i64,
}

impl From<EventKey<'_>> for Key {
    fn from(key: EventKey<'_>) -> Self {
        Self {
            idempotency_key: key.idempotency_key.to_owned(),
            event_type: key.event_type.to_owned(),
            channel: key.channel.clone(),
            now: key.now,
        }
    }
}

impl Store {
    /// Stores an agent's message (once per `MessageSid`) in the newest
    /// conversation of its channel. One statement: the insert finds the
    /// conversation, and `UNIQUE(twilio_message_sid)` is the idempotency
    /// check (the event's key is derived from the `MessageSid` alone, so
    /// no receipt is written for it). Only when nothing was inserted does a
    /// read tell a duplicate from an unknown channel.
    pub async fn record_agent_message(
        &self,
        key: EventKey<'_>,
        message_sid: &MessageSid,
        author: &str,
        body: &str,
    ) -> StoreResult<Inbound<StoredAgentMessage>> {
        // Only the channel and the time: the key is the `MessageSid`'s.
        let event = (
            key.channel.clone(),
            key.now,
            message_sid.clone(),
            author.to_owned(),
            body.to_owned(),
        );
        self.write(event, |(channel, now, sid, author, body), conn| {
            Box::pin(async move {
                let inserted = insert_message_row(
                    &mut *conn,
                    NewMessage {
                        into: Target::NewestOf(channel),
                        direction: Direction::Agent,
                        author,
                        body,
                        client_msg_id: None,
                        twilio_message_sid: Some(sid.as_str()),
                        delivery: None,
                        now: *now,
                    },
                )
                .await?;
                if let Some(row) = inserted {
                    return Ok(Inbound::Applied(StoredAgentMessage {
                        customer: parse_id(&row, "customer_id", CustomerId::parse)?,
                        message: MessageRecord::from_row(&row)?,
                    }));
                }
                let known = sqlx::query("SELECT 1 FROM conversations WHERE flex_channel_sid = ?")
                    .bind(channel.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(match known {
                    Some(_) => Inbound::Duplicate,
                    None => Inbound::UnknownChannel,
                })
            })
        })
        .await
    }

    /// Records that an agent joined the channel (the conversation's agent).
    pub async fn record_agent_joined(
        &self,
        key: EventKey<'_>,
        agent_name: &str,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        let event = (Key::from(key), agent_name.to_owned());
        self.write(event, |(key, agent_name), conn| {
            Box::pin(async move {
                let mut conversation = match claim(conn, key).await? {
                    Ok(conversation) => conversation,
                    Err(done) => return Ok(widen(done)),
                };
                if conversation.agent_name.as_deref() == Some(agent_name.as_str()) {
                    return Ok(Inbound::Duplicate);
                }
                sqlx::query("UPDATE conversations SET agent_name = ?, updated_at = ? WHERE id = ?")
                    .bind(agent_name)
                    .bind(key.now)
                    .bind(conversation.id.as_str())
                    .execute(&mut *conn)
                    .await?;
                conversation.agent_name = Some(agent_name.clone());
                Ok(Inbound::Applied(conversation))
            })
        })
        .await
    }

    /// Closes the channel's conversation (once).
    pub async fn close_by_channel(
        &self,
        key: EventKey<'_>,
        reason: CloseReason,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        self.write((Key::from(key), reason), |(key, reason), conn| {
            Box::pin(async move {
                let mut conversation = match claim(conn, key).await? {
                    Ok(conversation) => conversation,
                    Err(done) => return Ok(widen(done)),
                };
                let Ok(next) = conversation.state.apply(Transition::Closed(*reason)) else {
                    return Ok(Inbound::Duplicate);
                };
                sqlx::query(
                    "UPDATE conversations SET state = ?, close_reason = ?, updated_at = ?
                     WHERE id = ? AND state <> 'closed'",
                )
                .bind(next.as_str())
                .bind(reason.as_str())
                .bind(key.now)
                .bind(conversation.id.as_str())
                .execute(&mut *conn)
                .await?;
                conversation.state = next;
                Ok(Inbound::Applied(conversation))
            })
        })
        .await
    }

    /// Forgets receipts older than `before` (a retry that late is not one).
    pub async fn prune_receipts(&self, before: i64) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM webhook_receipts WHERE received_at < ?")
                .bind(before)
                .execute(self.writer())
                .await?
                .rows_affected(),
        )
    }
}

/// The first step of every event, inside its group commit: finds the
/// channel's (newest) conversation, then claims the event's idempotency
/// key. Writes nothing for an unknown channel (so a later retry is judged
/// afresh) or a key already claimed. A change the state already holds
/// (the same message under another key, the same agent, a conversation
/// already closed) keeps its claimed key: that event counts as applied.
async fn claim(
    conn: &mut SqliteConnection,
    key: &Key,
) -> StoreResult<Result<ConversationRecord, Inbound<Infallible>>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE flex_channel_sid = ? ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(key.channel.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Err(Inbound::UnknownChannel));
    };
    let claimed = sqlx::query(
        "INSERT INTO webhook_receipts (idempotency_key, event_type, received_at)
         VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&key.idempotency_key)
    .bind(&key.event_type)
    .bind(key.now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(Err(Inbound::Duplicate));
    }
    Ok(Ok(ConversationRecord::from_row(&row)?))
}

fn widen<T>(outcome: Inbound<Infallible>) -> Inbound<T> {
    match outcome {
        Inbound::Applied(never) => match never {},
        Inbound::Duplicate => Inbound::Duplicate,
        Inbound::UnknownChannel => Inbound::UnknownChannel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Seq;
    use crate::flex::{BackendKind, Opened};
    use crate::store::outbox::BEGIN_NONE;
    use crate::store::test_support::{opening, temp_store};

    /// A customer whose first message opened a conversation on `channel`.
    async fn open_conversation(store: &Store, channel: &ChannelSid) -> ConversationRecord {
        let conversation = opening(store, BackendKind::Chat).await;
        let open = store
            .outbox_take(&conversation.id, 0)
            .await
            .unwrap()
            .unwrap();
        let opened = Opened {
            channel: channel.clone(),
            task: None,
            flex_ref: None,
        };
        let (open, _) = store
            .outbox_finish_open(&open, &opened, 1, BEGIN_NONE)
            .await
            .unwrap();
        open.expect("opened")
    }

    #[tokio::test]
    async fn an_agent_message_is_stored_once_per_message_sid_and_queues_nothing_for_flex() {
        let (store, _dir) = temp_store().await;
        let channel = ChannelSid::parse("CH00000000000000000000000000000001").unwrap();
        let conversation = open_conversation(&store, &channel).await;
        let sid = MessageSid::parse("IM00000000000000000000000000000001").unwrap();
        let key = |idempotency_key| EventKey {
            idempotency_key,
            event_type: "onMessageSent",
            channel: &channel,
            now: 2,
        };
        let queued = store.outbox_depth().await.unwrap();

        let first = store
            .record_agent_message(key("webhook"), &sid, "alice", "hi")
            .await
            .unwrap();
        let again = store
            .record_agent_message(key("resync"), &sid, "alice", "hi")
            .await
            .unwrap();

        let Inbound::Applied(stored) = first else {
            panic!("the first is stored");
        };
        assert_eq!(stored.message.seq.0, 2);
        assert_eq!(again, Inbound::Duplicate);
        assert_eq!(
            store.outbox_depth().await.unwrap(),
            queued,
            "nothing for Flex"
        );
        let messages = store
            .messages_since(&conversation.customer_id, stored.message.seq, 10)
            .await
            .unwrap();
        assert!(
            messages.is_empty(),
            "stored once, no seq taken by the repeat"
        );
    }

    #[tokio::test]
    async fn an_agent_message_for_a_channel_no_conversation_has_is_stored_nowhere() {
        let (store, _dir) = temp_store().await;
        let ours = ChannelSid::parse("CH00000000000000000000000000000001").unwrap();
        let conversation = open_conversation(&store, &ours).await;
        let other = ChannelSid::parse("CH00000000000000000000000000000002").unwrap();
        let sid = MessageSid::parse("IM00000000000000000000000000000001").unwrap();
        let key = EventKey {
            idempotency_key: "webhook",
            event_type: "onMessageAdded",
            channel: &other,
            now: 2,
        };

        let outcome = store
            .record_agent_message(key, &sid, "alice", "hi")
            .await
            .unwrap();

        assert_eq!(outcome, Inbound::UnknownChannel);
        let messages = store
            .messages_since(&conversation.customer_id, Seq(0), 10)
            .await
            .unwrap();
        assert!(
            messages.iter().all(|m| m.direction != Direction::Agent),
            "nothing stored"
        );
    }
}

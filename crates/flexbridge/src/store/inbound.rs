//! Applying what Flex tells us (webhooks) to the store, each in one
//! transaction that also claims the event's idempotency key in
//! `webhook_receipts`: a repeated delivery finds its key taken and changes
//! nothing. A webhook is answered 2xx only after this commit.

use sqlx::{Sqlite, Transaction};

use super::{
    ConversationRecord, Direction, MessageRecord, NewMessage, Store, StoreResult,
    conversation_columns, insert_message,
};
use crate::core::conversation::{CloseReason, Transition};
use crate::core::ids::{ChannelSid, MessageSid};

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
    pub conversation: ConversationRecord,
    pub message: MessageRecord,
}

enum Begun {
    Ready(Transaction<'static, Sqlite>, Box<ConversationRecord>),
    Done(Inbound<std::convert::Infallible>),
}

impl Store {
    /// Starts an inbound transaction: claims the idempotency key and finds
    /// the channel's (newest) conversation.
    async fn begin_inbound(&self, key: EventKey<'_>) -> StoreResult<Begun> {
        let mut tx = self.write().await?;
        let claimed = sqlx::query(
            "INSERT INTO webhook_receipts (idempotency_key, event_type, received_at)
             VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(key.idempotency_key)
        .bind(key.event_type)
        .bind(key.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(Begun::Done(Inbound::Duplicate));
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            conversation_columns!(),
            " FROM conversations WHERE flex_channel_sid = ? ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(key.channel.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(row) => Ok(Begun::Ready(
                tx,
                Box::new(ConversationRecord::from_row(&row)?),
            )),
            None => {
                // Not ours: keep no receipt, so a later retry is judged afresh.
                tx.rollback().await?;
                Ok(Begun::Done(Inbound::UnknownChannel))
            }
        }
    }

    /// Stores an agent's message (once per `MessageSid`).
    pub async fn record_agent_message(
        &self,
        key: EventKey<'_>,
        message_sid: &MessageSid,
        author: &str,
        body: &str,
    ) -> StoreResult<Inbound<StoredAgentMessage>> {
        let (mut tx, conversation) = match self.begin_inbound(key).await? {
            Begun::Ready(tx, conversation) => (tx, *conversation),
            Begun::Done(outcome) => return Ok(widen(outcome)),
        };
        let inserted = insert_message(
            &mut tx,
            NewMessage {
                customer: &conversation.customer_id,
                conversation: &conversation.id,
                direction: Direction::Agent,
                author,
                body,
                client_msg_id: None,
                twilio_message_sid: Some(message_sid.as_str()),
                delivery: None,
                now: key.now,
            },
        )
        .await?;
        let Some(message) = inserted else {
            tx.rollback().await?;
            return Ok(Inbound::Duplicate);
        };
        tx.commit().await?;
        Ok(Inbound::Applied(StoredAgentMessage {
            conversation,
            message,
        }))
    }

    /// Records that an agent joined the channel (the conversation's agent).
    pub async fn record_agent_joined(
        &self,
        key: EventKey<'_>,
        agent_name: &str,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        let (mut tx, mut conversation) = match self.begin_inbound(key).await? {
            Begun::Ready(tx, conversation) => (tx, *conversation),
            Begun::Done(outcome) => return Ok(widen(outcome)),
        };
        if conversation.agent_name.as_deref() == Some(agent_name) {
            tx.rollback().await?;
            return Ok(Inbound::Duplicate);
        }
        sqlx::query("UPDATE conversations SET agent_name = ?, updated_at = ? WHERE id = ?")
            .bind(agent_name)
            .bind(key.now)
            .bind(conversation.id.as_str())
            .execute(&mut *tx)
            .await?;
        conversation.agent_name = Some(agent_name.to_owned());
        tx.commit().await?;
        Ok(Inbound::Applied(conversation))
    }

    /// Closes the channel's conversation (once).
    pub async fn close_by_channel(
        &self,
        key: EventKey<'_>,
        reason: CloseReason,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        let (mut tx, mut conversation) = match self.begin_inbound(key).await? {
            Begun::Ready(tx, conversation) => (tx, *conversation),
            Begun::Done(outcome) => return Ok(widen(outcome)),
        };
        let Ok(next) = conversation.state.apply(Transition::Closed(reason)) else {
            tx.rollback().await?;
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
        .execute(&mut *tx)
        .await?;
        conversation.state = next;
        tx.commit().await?;
        Ok(Inbound::Applied(conversation))
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

fn widen<T>(outcome: Inbound<std::convert::Infallible>) -> Inbound<T> {
    match outcome {
        Inbound::Applied(never) => match never {},
        Inbound::Duplicate => Inbound::Duplicate,
        Inbound::UnknownChannel => Inbound::UnknownChannel,
    }
}

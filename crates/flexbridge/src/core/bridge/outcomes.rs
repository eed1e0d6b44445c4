//! What the outbox's jobs came to, decided here: each outcome is stored
//! (taking the conversation's next job in the same commit) and then told
//! to the customer. The outbox only schedules and calls Flex.

use super::Bridge;
use crate::core::backend::Opened;
use crate::core::chain;
use crate::core::conversation::CloseReason;
use crate::core::fanout::{DeliveryOutcome, Notice};
use crate::core::ids::CustomerId;
use crate::core::storage::{SendOutcome, StorageResult};
use crate::core::work::{Begin, JobKind, NextJob, OutboxJob, OutgoingMessage};

impl Bridge {
    /// The conversation's channel exists in Flex: it is open (the
    /// customer is told, unless they ended it meanwhile).
    pub async fn opened(
        &self,
        job: &OutboxJob,
        opened: &Opened,
        begin: Begin,
    ) -> StorageResult<NextJob> {
        let (conversation, next) = self
            .inner
            .storage
            .finish_open(job, opened, self.now(), begin)
            .await?;
        tracing::info!(conversation = %job.conversation_id, channel = %opened.channel, "Flex channel open");
        if let Some(conversation) = conversation {
            self.tell(&job.customer_id, Notice::Conversation(conversation))
                .await;
        }
        Ok(next)
    }

    /// A customer message's fate in Flex: recorded, then told to every
    /// tab of the customer (`delivery`).
    pub async fn settled(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: SendOutcome,
        begin: Begin,
    ) -> StorageResult<NextJob> {
        let now = self.now();
        let next = self
            .inner
            .storage
            .settle_send(job, message, &outcome, now, begin)
            .await?;
        let outcome = match outcome {
            SendOutcome::Delivered(_) => {
                metrics::counter!("flexbridge_messages_out_total").increment(1);
                metrics::counter!("flexbridge_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                metrics::histogram!("flexbridge_delivery_latency_seconds")
                    .record((now - message.accepted_at).max(0) as f64 / 1000.0);
                DeliveryOutcome::Delivered
            }
            SendOutcome::Failed(error) => {
                metrics::counter!("flexbridge_deliveries_total", "outcome" => "failed")
                    .increment(1);
                DeliveryOutcome::Failed(error)
            }
        };
        let notice = Notice::Delivery {
            seq: message.seq,
            client_msg_id: message.client_msg_id.clone(),
            outcome,
        };
        self.tell(&job.customer_id, notice).await;
        Ok(next)
    }

    /// A job held back by something only the operator can fix (Flex
    /// refuses the bridge's credentials): its messages stay queued, and
    /// the customer hears they are delayed (`delivery` `delayed`) rather
    /// than nothing. A send tells its message; an "open" the messages
    /// queued behind it.
    pub async fn delayed(&self, job: &OutboxJob, why: &str) -> StorageResult<()> {
        let messages = match &job.kind {
            JobKind::Send(message) => vec![(message.seq, message.client_msg_id.clone())],
            JobKind::Open => self
                .inner
                .storage
                .queued_messages(&job.conversation_id)
                .await?
                .into_iter()
                .map(|m| (m.seq, m.client_msg_id))
                .collect(),
            JobKind::Sync | JobKind::Close => Vec::new(),
        };
        for (seq, client_msg_id) in messages {
            metrics::counter!("flexbridge_deliveries_total", "outcome" => "delayed").increment(1);
            let notice = Notice::Delivery {
                seq,
                client_msg_id,
                outcome: DeliveryOutcome::Delayed(why.to_owned()),
            };
            self.tell(&job.customer_id, notice).await;
        }
        Ok(())
    }

    /// A job that is done, or has nothing to do.
    pub async fn job_done(&self, job: &OutboxJob, begin: Begin) -> StorageResult<NextJob> {
        self.inner.storage.finish_job(job, begin).await
    }

    /// The customer's end reached Flex (or needed nothing there). The
    /// customer's next conversation, whose opening waited for this, is
    /// woken.
    pub async fn closed_in_flex(&self, job: &OutboxJob, begin: Begin) -> StorageResult<NextJob> {
        let next = self.job_done(job, begin).await?;
        self.next_conversation_may_open(&job.customer_id).await;
        Ok(next)
    }

    /// The customer's close left Flex's queue: their live conversation,
    /// whose opening waited for it, is woken (the sweep would find it
    /// otherwise).
    pub async fn next_conversation_may_open(&self, customer: &CustomerId) {
        match self.inner.storage.latest_conversation(customer).await {
            Ok(Some(later)) if later.state.is_live() => self.inner.wakeups.wake(&later.id),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error.cause_chain = %chain(&error), "finding the conversation after a close; the sweep will")
            }
        }
    }

    /// The conversation cannot go on in Flex (its channel cannot be
    /// created, or is gone): it closes, each of its queued messages fails,
    /// and the customer is told (their next message opens a new
    /// conversation).
    pub async fn abandoned(
        &self,
        job: &OutboxJob,
        reason: CloseReason,
        error: &str,
    ) -> StorageResult<()> {
        let abandoned = self
            .inner
            .storage
            .abandon(&job.conversation_id, reason, error, self.now())
            .await?;
        for message in abandoned.failed {
            metrics::counter!("flexbridge_deliveries_total", "outcome" => "failed").increment(1);
            let notice = Notice::Delivery {
                seq: message.seq,
                client_msg_id: message.client_msg_id,
                outcome: DeliveryOutcome::Failed(error.to_owned()),
            };
            self.tell(&message.customer_id, notice).await;
        }
        if let Some(conversation) = abandoned.closed {
            tracing::warn!(conversation = %conversation.id, reason = reason.as_str(), "conversation abandoned");
            self.tell_changed(conversation, |conversation| Notice::ChatEnded {
                conversation,
                reason,
            })
            .await;
        }
        Ok(())
    }
}

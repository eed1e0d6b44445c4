//! One attempt at one outbox row: open the Flex channel, send a message,
//! re-attach after a start, or close the channel the customer ended; and
//! what its outcome means for the row
//! (done, retried later, failed for good, or its conversation abandoned).

use super::{Outbox, Step, duration_ms, lock};
use crate::core::bridge::{BridgeError, DeliveryOutcome, EventOutcome, Notice};
use crate::core::clock::now_ms;
use crate::core::conversation::CloseReason;
use crate::core::ids::{CustomerId, FlexIdentity, MessageSid, Seq};
use crate::flex::{
    Disposition, FlexBackend, FlexError, OpenRequest, OutboundMessage, ResyncRequest,
};
use crate::store::StoreError;
use crate::store::outbox::{JobKind, OutboxJob, OutgoingMessage};
use crate::telemetry::chain;

/// The row a failure belongs to.
#[derive(Clone, Copy)]
enum Row<'a> {
    Open,
    Send(&'a OutgoingMessage),
    Sync,
    Close,
}

impl Outbox {
    /// Carries out `job` (its conversation's head row, due).
    pub(super) async fn attempt(&self, job: OutboxJob) -> Result<Step, StoreError> {
        let paused_until = *lock(&self.inner.paused_until);
        if now_ms() < paused_until {
            self.scan_at(paused_until);
            return Ok(Step::Wait);
        }
        let row = match &job.kind {
            JobKind::Open => Row::Open,
            JobKind::Send(message) => Row::Send(message),
            JobKind::Sync => Row::Sync,
            JobKind::Close => Row::Close,
        };
        let Some(backend) = self.inner.backends.get(job.backend).map(AsRef::as_ref) else {
            let missing = FlexError::NotConfigured(format!("no {} backend", job.backend));
            return self.failed(&job, row, missing, false).await;
        };
        match row {
            Row::Open => self.open(&job, backend).await,
            Row::Send(message) => self.send(&job, message, backend).await,
            Row::Sync => self.sync(&job, backend).await,
            Row::Close => self.close(&job, backend).await,
        }
    }

    async fn open(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let request = OpenRequest {
            conversation: &job.conversation_id,
            customer: &job.customer_id,
            identity: &identity,
            customer_name: &job.customer_name,
        };
        match backend.open(&request).await {
            Ok(opened) => {
                let (conversation, next) = inner
                    .store
                    .outbox_finish_open(job, &opened, now_ms(), self.due_by())
                    .await?;
                tracing::info!(conversation = %job.conversation_id, channel = %opened.channel, "Flex channel open");
                if let Some(conversation) = conversation {
                    inner
                        .fanout
                        .notify(&job.customer_id, Notice::Conversation(conversation))
                        .await;
                }
                Ok(Step::Done(next.map(Box::new)))
            }
            Err(error) => self.failed(job, Row::Open, error, false).await,
        }
    }

    async fn send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        backend: &dyn FlexBackend,
    ) -> Result<Step, StoreError> {
        let Some(channel) = &job.channel else {
            // Cannot happen while the open row precedes every send; never
            // post to a channel we do not have (the post's `Channels/undefined`).
            tracing::error!(conversation = %job.conversation_id, "a message is queued for a conversation without a channel");
            return self
                .settle(job, message, Err("the conversation has no Flex channel"))
                .await;
        };
        // Only if an earlier attempt may have reached Flex: one that failed
        // ambiguously, or one a run may have made without recording it.
        let unsure = self.take_unsure(&job.conversation_id);
        if job.maybe_landed || unsure {
            match backend.find_sent(channel, &message.client_msg_id).await {
                Ok(Some(sid)) => {
                    tracing::info!(conversation = %job.conversation_id, seq = message.seq.0, "an earlier attempt had landed; not sending again");
                    return self.settle(job, message, Ok(&sid)).await;
                }
                Ok(None) => {}
                Err(error) => return self.failed(job, Row::Send(message), error, true).await,
            }
        }
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let outbound = OutboundMessage {
            identity: &identity,
            client_msg_id: &message.client_msg_id,
            seq: message.seq,
            body: &message.body,
        };
        match backend.send(channel, &outbound).await {
            Ok(sid) => self.settle(job, message, Ok(&sid)).await,
            Err(error) => self.failed(job, Row::Send(message), error, false).await,
        }
    }

    /// Re-attaches to an open conversation after a start: webhooks pointed
    /// here, missed agent messages and a missed chat end applied (through
    /// the same idempotent path as webhooks).
    async fn sync(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let Some(channel) = job
            .channel
            .as_ref()
            .filter(|_| job.conversation_state.is_live())
        else {
            return self.done(job).await;
        };
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let request = ResyncRequest {
            channel,
            identity: &identity,
            flex_ref: job.flex_ref.as_ref(),
        };
        let events = match backend.resync(&request).await {
            Ok(events) => events,
            Err(error) => return self.failed(job, Row::Sync, error, false).await,
        };
        let mut caught_up = 0;
        for event in events {
            let event = crate::flex::with_agent_name(backend, event).await;
            match inner.bridge.apply_flex_event(&event).await {
                Ok(EventOutcome::Applied) => caught_up += 1,
                Ok(_) => {}
                Err(BridgeError::Store(error)) => return Err(error),
                Err(error) => {
                    tracing::warn!(error.cause_chain = %chain(&error), "applying a missed event")
                }
            }
        }
        if caught_up > 0 {
            tracing::info!(conversation = %job.conversation_id, caught_up, "caught up on what Flex said while the bridge was away");
        }
        self.done(job).await
    }

    /// Ends the chat in Flex after the customer ended it (the messages they
    /// sent before went first: this row is behind them). Repeatable: closing
    /// a closed channel is fine, and a channel Flex no longer has needs no
    /// closing. Once the row is gone, the customer's next conversation,
    /// whose opening waited for it, is woken.
    async fn close(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Result<Step, StoreError> {
        let step = match &job.channel {
            // It never reached Flex (its opening failed): nothing to close.
            None => self.done(job).await,
            Some(channel) => match backend.close(channel, job.flex_ref.as_ref()).await {
                Ok(()) => {
                    tracing::info!(conversation = %job.conversation_id, %channel, "chat ended in Flex for the customer");
                    self.done(job).await
                }
                Err(error) => self.failed(job, Row::Close, error, false).await,
            },
        }?;
        if matches!(step, Step::Done(_)) {
            match self.inner.store.latest_conversation(&job.customer_id).await {
                Ok(Some(next)) if next.state.is_live() => self.inner.wakeups.wake(&next.id),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error.cause_chain = %chain(&error), "finding the conversation after a close; the sweep will")
                }
            }
        }
        Ok(step)
    }

    /// The row is done (or has nothing to do).
    async fn done(&self, job: &OutboxJob) -> Result<Step, StoreError> {
        let next = self.inner.store.outbox_done(job, self.due_by()).await?;
        Ok(Step::Done(next.map(Box::new)))
    }

    /// Records a message's fate (in Flex as `sid`, or refused for good
    /// with an error) and tells the customer.
    async fn settle(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: Result<&MessageSid, &str>,
    ) -> Result<Step, StoreError> {
        let now = now_ms();
        let next = self
            .inner
            .store
            .outbox_settle_send(job, message, outcome, now, self.due_by())
            .await?;
        if outcome.is_ok() {
            metrics::counter!("flexbridge_messages_out_total").increment(1);
            metrics::histogram!("flexbridge_delivery_latency_seconds")
                .record((now - message.accepted_at).max(0) as f64 / 1000.0);
        }
        let outcome = match outcome {
            Ok(_) => DeliveryOutcome::Delivered,
            Err(error) => DeliveryOutcome::Failed(error.to_owned()),
        };
        self.tell(
            &job.customer_id,
            message.seq,
            &message.client_msg_id,
            outcome,
        )
        .await;
        Ok(Step::Done(next.map(Box::new)))
    }

    async fn tell(
        &self,
        customer: &CustomerId,
        seq: Seq,
        client_msg_id: &str,
        outcome: DeliveryOutcome,
    ) {
        let notice = Notice::Delivery {
            seq,
            client_msg_id: client_msg_id.to_owned(),
            outcome,
        };
        self.inner.fanout.notify(customer, notice).await;
    }

    /// Decides what a failure means for the row. `still_maybe_landed`:
    /// the failure happened while checking an earlier attempt, whose
    /// uncertainty remains.
    async fn failed(
        &self,
        job: &OutboxJob,
        row: Row<'_>,
        error: FlexError,
        still_maybe_landed: bool,
    ) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let now = now_ms();
        let attempts = job.attempts + 1;
        let too_old = now - job.created_at > duration_ms(inner.config.give_up_after);
        let disposition = if too_old {
            Disposition::Permanent
        } else {
            error.disposition()
        };
        let error_text = chain(&error);
        let (delay, maybe_landed) = match disposition {
            Disposition::Permanent => {
                tracing::warn!(conversation = %job.conversation_id, error = %error_text, "Flex refused; giving up");
                // A channel Flex no longer has ends its conversation.
                let gone = error.is_not_found() && !matches!(row, Row::Open);
                return match row {
                    _ if gone => {
                        self.abandon(job, CloseReason::ChannelGone, &error_text)
                            .await
                    }
                    Row::Send(message) => self.settle(job, message, Err(&error_text)).await,
                    Row::Open => {
                        self.abandon(job, CloseReason::OpenFailed, &error_text)
                            .await
                    }
                    Row::Sync | Row::Close => self.done(job).await,
                };
            }
            Disposition::RateLimited(retry_after) => {
                let delay = retry_after.unwrap_or_else(|| self.backoff(attempts));
                let until = now + duration_ms(delay);
                let mut paused = lock(&inner.paused_until);
                *paused = (*paused).max(until);
                tracing::warn!(
                    delay_ms = duration_ms(delay),
                    "Twilio rate limit (429); pausing deliveries"
                );
                (delay, still_maybe_landed)
            }
            Disposition::Transient { maybe_landed } => {
                (self.backoff(attempts), maybe_landed || still_maybe_landed)
            }
        };
        tracing::warn!(
            conversation = %job.conversation_id, attempts, retry_in_ms = duration_ms(delay),
            maybe_landed, error = %error_text, "delivery failed; will retry"
        );
        let next_attempt_at = now + duration_ms(delay);
        inner
            .store
            .outbox_retry_later(job.id, next_attempt_at, &error_text, maybe_landed)
            .await?;
        self.scan_at(next_attempt_at);
        Ok(Step::Wait)
    }

    /// The conversation cannot go on in Flex: it closes, each of its queued
    /// messages fails, and the customer is told (their next message opens
    /// a new conversation).
    async fn abandon(
        &self,
        job: &OutboxJob,
        reason: CloseReason,
        error: &str,
    ) -> Result<Step, StoreError> {
        let abandoned = self
            .inner
            .store
            .outbox_abandon(&job.conversation_id, reason, error, now_ms())
            .await?;
        for message in abandoned.failed {
            let outcome = DeliveryOutcome::Failed(error.to_owned());
            self.tell(
                &message.customer_id,
                message.seq,
                &message.client_msg_id,
                outcome,
            )
            .await;
        }
        if let Some(conversation) = abandoned.closed {
            tracing::warn!(conversation = %conversation.id, reason = reason.as_str(), "conversation abandoned");
            let fanout = &self.inner.fanout;
            fanout
                .notify(&job.customer_id, Notice::Conversation(conversation.clone()))
                .await;
            fanout
                .notify(
                    &job.customer_id,
                    Notice::ChatEnded {
                        conversation,
                        reason,
                    },
                )
                .await;
        }
        Ok(Step::Done(None))
    }
}

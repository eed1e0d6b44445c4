//! One attempt at one job: open the Flex channel, send a message,
//! re-attach after a start, or close the channel the customer ended; and
//! what a failure means for the job (retried later, failed for good, or its
//! conversation abandoned). Successes and final failures go to the core.

use super::{Outbox, Step, lock};
use crate::core::backend::{
    BackendError, Disposition, FlexBackend, OpenRequest, OutboundMessage, ResyncRequest,
};
use crate::core::chain;
use crate::core::clock::duration_ms;
use crate::core::conversation::CloseReason;
use crate::core::storage::{SendOutcome, StorageError};
use crate::core::work::{JobKind, NextJob, OutboxJob, OutgoingMessage};

type Attempt = Result<Step, StorageError>;

impl Outbox {
    /// Carries out `job` (its conversation's head job, due).
    pub(super) async fn attempt(&self, job: OutboxJob) -> Attempt {
        let paused_until = *lock(&self.inner.paused_until);
        if self.now() < paused_until {
            // Taken, not begun: the delivery stops here until the pause ends.
            self.inner
                .store
                .leases()
                .release(&job.conversation_id)
                .await?;
            self.scan_at(paused_until);
            return Ok(Step::Wait);
        }
        let Some(backend) = self.inner.backends.get(&job.backend).cloned() else {
            let missing = BackendError::not_configured(format!("no {} backend", job.backend));
            return self.failed(&job, missing, false).await;
        };
        let backend = backend.as_ref();
        match &job.kind {
            JobKind::Open => self.open(&job, backend).await,
            JobKind::Send(message) => self.send(&job, message, backend).await,
            JobKind::Sync => self.sync(&job, backend).await,
            JobKind::Close => self.close(&job, backend).await,
        }
    }

    async fn open(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Attempt {
        let request = OpenRequest {
            conversation: &job.conversation_id,
            customer: &job.customer_id,
            customer_name: &job.customer_name,
            pre_engagement: &job.pre_engagement,
        };
        match backend.open(&request).await {
            Ok(opened) => {
                let bridge = &self.inner.bridge;
                Ok(Step::Next(bridge.opened(job, &opened, self.begin()).await?))
            }
            Err(error) => self.failed(job, error, false).await,
        }
    }

    async fn send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        backend: &dyn FlexBackend,
    ) -> Attempt {
        let Some(channel) = &job.channel else {
            // Cannot happen while the open job precedes every send; never
            // post to a channel we do not have (the post's `Channels/undefined`).
            tracing::error!(conversation = %job.conversation_id, "a message is queued for a conversation without a channel");
            let failed = SendOutcome::Failed("the conversation has no Flex channel".into());
            return self.settle(job, message, failed).await;
        };
        // Only if an earlier attempt may have reached Flex: one that failed
        // ambiguously, or one a run may have made without recording it.
        let unsure = self.take_unsure(&job.conversation_id);
        if job.maybe_landed || unsure {
            match backend.find_sent(channel, &message.client_msg_id).await {
                Ok(Some(sent)) => {
                    tracing::info!(conversation = %job.conversation_id, seq = message.seq.0, "an earlier attempt had landed; not sending again");
                    return self
                        .settle(job, message, SendOutcome::Delivered(sent))
                        .await;
                }
                Ok(None) => {}
                Err(error) => return self.failed(job, error, true).await,
            }
        }
        let outbound = OutboundMessage {
            customer: &job.customer_id,
            client_msg_id: &message.client_msg_id,
            seq: message.seq,
            body: &message.body,
        };
        match backend.send(channel, &outbound).await {
            Ok(sent) => {
                self.settle(job, message, SendOutcome::Delivered(sent))
                    .await
            }
            Err(error) => self.failed(job, error, false).await,
        }
    }

    /// Re-attaches to an open conversation after a start: webhooks pointed
    /// here, missed agent messages and a missed chat end applied (through
    /// the same idempotent path as webhooks).
    async fn sync(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Attempt {
        let Some(channel) = job
            .channel
            .as_ref()
            .filter(|_| job.conversation_state.is_live())
        else {
            return self.done(job).await;
        };
        let request = ResyncRequest {
            channel,
            customer: &job.customer_id,
            flex_ref: job.flex_ref.as_ref(),
        };
        let events = match backend.resync(&request).await {
            Ok(events) => events,
            Err(error) => return self.failed(job, error, false).await,
        };
        let caught_up = self.inner.bridge.caught_up(&job.backend, events).await?;
        if caught_up > 0 {
            tracing::info!(conversation = %job.conversation_id, caught_up, "caught up on what Flex said while the bridge was away");
        }
        self.done(job).await
    }

    /// Ends the chat in Flex after the customer ended it (the messages they
    /// sent before went first: this job is behind them). Repeatable:
    /// closing a closed channel is fine, and a channel Flex no longer has
    /// needs no closing.
    async fn close(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Attempt {
        if let Some(channel) = &job.channel {
            if let Err(error) = backend.close(channel, job.flex_ref.as_ref()).await {
                return self.failed(job, error, false).await;
            }
            tracing::info!(conversation = %job.conversation_id, %channel, "chat ended in Flex for the customer");
        }
        // Without a channel it never reached Flex: nothing to close.
        let bridge = &self.inner.bridge;
        Ok(Step::Next(bridge.closed_in_flex(job, self.begin()).await?))
    }

    /// The job is done (or has nothing to do).
    async fn done(&self, job: &OutboxJob) -> Attempt {
        Ok(Step::Next(
            self.inner.bridge.job_done(job, self.begin()).await?,
        ))
    }

    /// A message's fate, for the core to record and tell.
    async fn settle(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: SendOutcome,
    ) -> Attempt {
        let bridge = &self.inner.bridge;
        Ok(Step::Next(
            bridge.settled(job, message, outcome, self.begin()).await?,
        ))
    }

    /// Decides what a failure means for the job. `still_maybe_landed`:
    /// the failure happened while checking an earlier attempt, whose
    /// uncertainty remains.
    async fn failed(
        &self,
        job: &OutboxJob,
        error: BackendError,
        still_maybe_landed: bool,
    ) -> Attempt {
        let inner = &self.inner;
        let now = self.now();
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
                return self.given_up(job, &error, &error_text).await;
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
            .outbox()
            .retry_later(job.id, next_attempt_at, &error_text, maybe_landed)
            .await?;
        self.scan_at(next_attempt_at);
        Ok(Step::Wait)
    }

    /// A job that will never succeed: a message fails, a channel Flex
    /// cannot create or no longer has ends its conversation, a sync or a
    /// close is dropped.
    async fn given_up(&self, job: &OutboxJob, error: &BackendError, text: &str) -> Attempt {
        let bridge = &self.inner.bridge;
        let gone = error.is_gone() && job.kind != JobKind::Open;
        let reason = match &job.kind {
            _ if gone => CloseReason::ChannelGone,
            JobKind::Open => CloseReason::OpenFailed,
            JobKind::Send(message) => {
                return self
                    .settle(job, message, SendOutcome::Failed(text.to_owned()))
                    .await;
            }
            JobKind::Sync => return self.done(job).await,
            JobKind::Close => {
                let next = bridge.closed_in_flex(job, self.begin()).await?;
                return Ok(Step::Next(next));
            }
        };
        bridge.abandoned(job, reason, text).await?;
        if job.kind == JobKind::Close {
            bridge.next_conversation_may_open(&job.customer_id).await;
        }
        Ok(Step::Next(NextJob::Empty))
    }
}

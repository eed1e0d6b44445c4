//! One attempt at one job: open the Flex channel, send a message,
//! re-attach after a start, or close the channel the customer ended; and
//! what a failure means for the job (retried later, failed for good, or its
//! conversation abandoned). Successes and final failures go to the core.

use super::{Outbox, Step, lock};
use crate::core::backend::{
    BackendError, Disposition, FlexBackend, MediaUpload, OpenRequest, OutboundMessage,
    ResyncRequest,
};
use crate::core::chain;
use crate::core::clock::duration_ms;
use crate::core::conversation::CloseReason;
use crate::core::storage::{SendOutcome, StorageError};
use crate::core::work::{JobKind, NextJob, OutboxJob, OutgoingAttachment, OutgoingMessage};

type Attempt = Result<Step, StorageError>;

/// What a customer is told of a message that waits for the operator.
const DELAYED: &str =
    "Flex is not accepting messages from the bridge right now; yours is kept and will be sent";

/// What a customer is told of a message whose job was poison.
const POISONED: &str = "the bridge could not record this message's delivery and stopped trying; its operator is alerted";

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
        // A file goes to Flex first (once: its id there is recorded).
        let media = match &message.attachment {
            None => None,
            Some(file) => match self.media_of(job, file, backend).await? {
                Ok(media) => Some(media),
                Err(failed) => return Ok(failed),
            },
        };
        let outbound = OutboundMessage {
            customer: &job.customer_id,
            client_msg_id: &message.client_msg_id,
            seq: message.seq,
            body: &message.body,
            media: media.as_deref(),
        };
        match backend.send(channel, &outbound).await {
            Ok(sent) => {
                self.settle(job, message, SendOutcome::Delivered(sent))
                    .await
            }
            Err(error) => self.failed(job, error, false).await,
        }
    }

    /// The Flex id of a message's file: recorded by an earlier attempt, or
    /// uploaded now and recorded before the message is posted (a crash in
    /// between uploads it again: an unused upload, never a second
    /// message). `Err(step)`: the upload failed, and what that means.
    async fn media_of(
        &self,
        job: &OutboxJob,
        file: &OutgoingAttachment,
        backend: &dyn FlexBackend,
    ) -> Result<Result<String, Step>, StorageError> {
        if let Some(media) = &file.media {
            return Ok(Ok(media.clone()));
        }
        let attachments = self.inner.store.attachments();
        let id = &file.attachment.id;
        let Some(bytes) = attachments.content(id).await? else {
            let missing = BackendError::not_configured(format!("the file {id} is not stored"));
            return Ok(Err(self.failed(job, missing, false).await?));
        };
        let upload = MediaUpload {
            filename: &file.attachment.filename,
            content_type: &file.attachment.content_type,
            bytes: &bytes,
        };
        match backend.upload_media(&upload).await {
            Ok(media) => {
                attachments.set_media(id, &media).await?;
                tracing::info!(conversation = %job.conversation_id, attachment = %id, "file uploaded to Flex");
                Ok(Ok(media))
            }
            Err(error) => Ok(Err(self.failed(job, error, false).await?)),
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
            since: job.conversation_created_at,
        };
        let resynced = match backend.resync(&request).await {
            Ok(resynced) => resynced,
            Err(error) => return self.failed(job, error, false).await,
        };
        let bridge = &self.inner.bridge;
        let caught_up = bridge
            .caught_up(&job.backend, &job.conversation_id, resynced)
            .await?;
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
                // Twilio's 429 normally means "not executed", but exactly
                // once does not rest on "normally": the retry of a send
                // (the one create that is not idempotent) looks first,
                // one lookup per 429'd message, after the pause.
                let is_send = matches!(job.kind, JobKind::Send(_));
                (delay, still_maybe_landed || is_send)
            }
            Disposition::Transient { maybe_landed } => {
                (self.backoff(attempts), maybe_landed || still_maybe_landed)
            }
            Disposition::Unauthorized => {
                tracing::error!(
                    conversation = %job.conversation_id, error = %error_text,
                    "Twilio refuses the bridge's credentials: deliveries wait until an operator \
                     fixes them (flexbridge doctor names the settings)"
                );
                metrics::counter!(crate::telemetry::families::TWILIO_AUTH_FAILURES).increment(1);
                if job.attempts == 0 {
                    inner.bridge.delayed(job, DELAYED).await?;
                }
                (self.backoff(attempts), still_maybe_landed)
            }
        };
        metrics::counter!(crate::telemetry::families::RETRIES, "status" => error.label())
            .increment(1);
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

    /// A job whose outcome the store refuses for good (see the module
    /// doc): settled as failed so the conversation's queue moves on.
    pub(super) async fn poisoned(&self, job: &OutboxJob, error: &StorageError) -> Attempt {
        let kind = job.kind.as_str();
        tracing::error!(
            conversation = %job.conversation_id, customer = %job.customer_id, job = job.id, kind,
            error.cause_chain = %chain(error),
            "poison job: the store refuses its outcome for good; settled as failed"
        );
        metrics::counter!(crate::telemetry::families::POISON_JOBS, "kind" => kind).increment(1);
        let bridge = &self.inner.bridge;
        match &job.kind {
            JobKind::Send(message) => {
                let reason = SendOutcome::Failed(POISONED.to_owned());
                self.settle(job, message, reason).await
            }
            JobKind::Open => {
                bridge
                    .abandoned(job, CloseReason::OpenFailed, POISONED)
                    .await?;
                Ok(Step::Next(NextJob::Empty))
            }
            JobKind::Sync => self.done(job).await,
            JobKind::Close => Ok(Step::Next(bridge.closed_in_flex(job, self.begin()).await?)),
        }
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

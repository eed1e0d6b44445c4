//! A fake Flex that can fail, rate-limit and "land" a request while
//! answering an error, and a fanout that records what customers are told.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng as _;
use tokio::time::Instant;

use crate::core::backend::{
    BackendError, BackendName, FlexBackend, FlexEvent, FlexRef, MediaUpload, OpenRequest, Opened,
    OutboundMessage, Posted, ResyncRequest, Resynced, WebhookParseError,
};
use crate::core::fanout::{DeliveryOutcome, Fanout, Notice};
use crate::core::ids::{CustomerId, RemoteChannel, RemoteMessage, hex};
use crate::core::lock;
use crate::flex::FlexError;

/// What the fake does to the next matching call.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// Answer this HTTP status without doing anything.
    Status(u16),
    /// Do the work, then answer this status anyway ("timed out but landed").
    Lands(u16),
    /// 429 with `Retry-After`.
    RateLimited(Duration),
    /// Take this long, then succeed.
    Slow(Duration),
    /// Wait until the test opens the fake's gate, then succeed.
    Held,
    /// Do the work, then the caller's task dies (a panic) before it can
    /// record the outcome.
    LandsThenDies,
    /// Succeed, answering this message SID (a Flex that repeats SIDs).
    AnswersSid(&'static str),
}

#[derive(Default)]
pub(super) struct FakeFlex {
    /// Customer → channel, as Flex dedupes channel creation by target.
    pub(super) channels: Mutex<HashMap<CustomerId, RemoteChannel>>,
    /// Everything posted: (channel, client message id, body).
    pub(super) posted: Mutex<Vec<(RemoteChannel, String, String)>>,
    /// Every file message posted: (client message id, media).
    pub(super) posted_media: Mutex<Vec<(String, String)>>,
    /// Every upload: its file name.
    pub(super) uploads: Mutex<Vec<String>>,
    pub(super) upload_faults: Mutex<VecDeque<Fault>>,
    pub(super) open_faults: Mutex<VecDeque<Fault>>,
    pub(super) send_faults: Mutex<VecDeque<Fault>>,
    pub(super) opens: AtomicUsize,
    pub(super) send_calls: AtomicUsize,
    /// When each send call arrived (tokio's clock: tests pause it).
    pub(super) send_times: Mutex<Vec<Instant>>,
    /// What `resync` reports as missed.
    pub(super) missed: Mutex<Vec<FlexEvent>>,
    pub(super) sync_faults: Mutex<VecDeque<Fault>>,
    pub(super) resyncs: AtomicUsize,
    /// The SID each posted message was answered with (client message id →
    /// SID), as Flex keeps it: `find_sent` finds the same.
    pub(super) answered: Mutex<HashMap<String, RemoteMessage>>,
    /// Closed until [`FakeFlex::open_gate`]: where `Fault::Held` waits.
    pub(super) gate: Gate,
}

/// A semaphore that starts closed (no permits).
pub(super) struct Gate(tokio::sync::Semaphore);

impl Default for Gate {
    fn default() -> Self {
        Self(tokio::sync::Semaphore::new(0))
    }
}

pub(super) fn sid(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    format!("{prefix}{}", hex(&bytes))
}

fn api_error(status: u16, retry_after: Option<Duration>) -> FlexError {
    FlexError::Api {
        status,
        code: None,
        message: format!("fake {status}"),
        retry_after,
    }
}

impl FakeFlex {
    pub(super) fn posted(&self) -> Vec<(RemoteChannel, String, String)> {
        lock(&self.posted).clone()
    }

    pub(super) fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    /// Lets every call held at the gate (`Fault::Held`) go on.
    pub(super) fn open_gate(&self) {
        self.gate
            .0
            .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }

    async fn apply(&self, fault: Option<Fault>) -> Result<bool, FlexError> {
        match fault {
            None => Ok(false),
            Some(Fault::Status(status)) => Err(api_error(status, None)),
            Some(Fault::RateLimited(after)) => Err(api_error(429, Some(after))),
            Some(Fault::Lands(_) | Fault::LandsThenDies) => Ok(true),
            Some(Fault::AnswersSid(_)) => Ok(false),
            Some(Fault::Held) => {
                let _open = self.gate.0.acquire().await;
                Ok(false)
            }
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(false)
            }
        }
    }
}

#[async_trait::async_trait]
impl FlexBackend for FakeFlex {
    fn name(&self) -> BackendName {
        super::FAKE
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/fake"
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, BackendError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.open_faults).pop_front();
        let lands = self.apply(fault).await?;
        let channel = lock(&self.channels)
            .entry(request.customer.clone())
            .or_insert_with(|| RemoteChannel::new(sid("CH")))
            .clone();
        if let (true, Some(Fault::Lands(status))) = (lands, fault) {
            return Err(api_error(status, None).into());
        }
        Ok(Opened {
            channel,
            flex_ref: None,
        })
    }

    async fn send(
        &self,
        channel: &RemoteChannel,
        message: &OutboundMessage<'_>,
    ) -> Result<Posted, BackendError> {
        self.send_calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.send_times).push(Instant::now());
        let fault = lock(&self.send_faults).pop_front();
        let lands = self.apply(fault).await?;
        lock(&self.posted).push((
            channel.clone(),
            message.client_msg_id.to_owned(),
            message.body.to_owned(),
        ));
        if let Some(media) = message.media {
            lock(&self.posted_media).push((message.client_msg_id.to_owned(), media.to_owned()));
        }
        let answer = match fault {
            Some(Fault::AnswersSid(sid)) => RemoteMessage::new(sid),
            _ => RemoteMessage::new(sid("IM")),
        };
        lock(&self.answered).insert(message.client_msg_id.to_owned(), answer.clone());
        match (lands, fault) {
            (true, Some(Fault::Lands(status))) => Err(api_error(status, None).into()),
            (true, Some(Fault::LandsThenDies)) => panic!("the fake kills the task after the send"),
            _ => Ok(Posted {
                message: answer,
                index: None,
            }),
        }
    }

    async fn upload_media(&self, upload: &MediaUpload<'_>) -> Result<String, BackendError> {
        let fault = lock(&self.upload_faults).pop_front();
        let lands = self.apply(fault).await?;
        lock(&self.uploads).push(upload.filename.to_owned());
        match (lands, fault) {
            (true, Some(Fault::Lands(status))) => Err(api_error(status, None).into()),
            (true, Some(Fault::LandsThenDies)) => {
                panic!("the fake kills the task after the upload")
            }
            _ => Ok(sid("ME")),
        }
    }

    async fn fetch_media(&self, _: &str) -> Result<Vec<u8>, BackendError> {
        Ok(b"%PDF-1.7\n".to_vec())
    }

    async fn find_sent(
        &self,
        channel: &RemoteChannel,
        client_msg_id: &str,
    ) -> Result<Option<Posted>, BackendError> {
        let found = lock(&self.posted)
            .iter()
            .any(|(ch, id, _)| ch == channel && id == client_msg_id);
        let answered = lock(&self.answered).get(client_msg_id).cloned();
        Ok(found.then(|| Posted {
            message: answered.unwrap_or_else(|| RemoteMessage::new(sid("IM"))),
            index: None,
        }))
    }

    async fn resync(&self, _request: &ResyncRequest<'_>) -> Result<Resynced, BackendError> {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.sync_faults).pop_front();
        self.apply(fault).await?;
        Ok(Resynced {
            events: lock(&self.missed).clone(),
            through_index: None,
        })
    }

    async fn close(&self, _: &RemoteChannel, _: Option<&FlexRef>) -> Result<(), BackendError> {
        Ok(())
    }

    fn parse_webhook(&self, _: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
        Err(WebhookParseError::Missing("EventType"))
    }
}

/// Collects what the core and the worker tell customers.
#[derive(Default)]
pub(super) struct Recorder(pub(super) Mutex<Vec<(CustomerId, Notice)>>);

#[async_trait::async_trait]
impl Fanout for Recorder {
    async fn notify(&self, customer: &CustomerId, notice: Notice) {
        lock(&self.0).push((customer.clone(), notice));
    }
}

impl Recorder {
    pub(super) fn deliveries(&self) -> Vec<(String, DeliveryOutcome)> {
        lock(&self.0)
            .iter()
            .filter_map(|(_, n)| match n {
                Notice::Delivery {
                    client_msg_id,
                    outcome,
                    ..
                } => Some((client_msg_id.clone(), outcome.clone())),
                _ => None,
            })
            .collect()
    }
}

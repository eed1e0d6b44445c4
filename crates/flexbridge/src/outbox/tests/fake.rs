//! A fake Flex that can fail, rate-limit and "land" a request while
//! answering an error, and a fanout that records what customers are told.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng as _;

use super::super::lock;
use crate::core::bridge::{DeliveryOutcome, Fanout, Notice};
use crate::core::ids::{ChannelSid, CustomerId, MessageSid, hex};
use crate::flex::{
    BackendKind, FlexBackend, FlexError, FlexEvent, FlexRef, OpenRequest, Opened, OutboundMessage,
    ResyncRequest, WebhookParseError,
};

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
    /// Do the work, then the caller's task dies (a panic) before it can
    /// record the outcome.
    LandsThenDies,
}

#[derive(Default)]
pub(super) struct FakeFlex {
    /// Target → channel, as Flex dedupes channel creation.
    pub(super) channels: Mutex<HashMap<String, ChannelSid>>,
    /// Everything posted: (channel, client message id, body).
    pub(super) posted: Mutex<Vec<(ChannelSid, String, String)>>,
    pub(super) open_faults: Mutex<VecDeque<Fault>>,
    pub(super) send_faults: Mutex<VecDeque<Fault>>,
    pub(super) opens: AtomicUsize,
    pub(super) send_calls: AtomicUsize,
    /// When each send call arrived.
    pub(super) send_times: Mutex<Vec<Instant>>,
    /// What `resync` reports as missed.
    pub(super) missed: Mutex<Vec<FlexEvent>>,
    pub(super) sync_faults: Mutex<VecDeque<Fault>>,
    pub(super) resyncs: AtomicUsize,
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
    pub(super) fn posted(&self) -> Vec<(ChannelSid, String, String)> {
        lock(&self.posted).clone()
    }

    pub(super) fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    async fn apply(fault: Option<Fault>) -> Result<bool, FlexError> {
        match fault {
            None => Ok(false),
            Some(Fault::Status(status)) => Err(api_error(status, None)),
            Some(Fault::RateLimited(after)) => Err(api_error(429, Some(after))),
            Some(Fault::Lands(_) | Fault::LandsThenDies) => Ok(true),
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(false)
            }
        }
    }
}

#[async_trait::async_trait]
impl FlexBackend for FakeFlex {
    fn kind(&self) -> BackendKind {
        BackendKind::Chat
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/fake"
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, FlexError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.open_faults).pop_front();
        let lands = Self::apply(fault).await?;
        let channel = lock(&self.channels)
            .entry(request.identity.as_str().to_owned())
            .or_insert_with(|| ChannelSid::parse(&sid("CH")).expect("valid"))
            .clone();
        if let (true, Some(Fault::Lands(status))) = (lands, fault) {
            return Err(api_error(status, None));
        }
        Ok(Opened {
            channel,
            task: None,
            flex_ref: None,
        })
    }

    async fn send(
        &self,
        channel: &ChannelSid,
        message: &OutboundMessage<'_>,
    ) -> Result<MessageSid, FlexError> {
        self.send_calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.send_times).push(Instant::now());
        let fault = lock(&self.send_faults).pop_front();
        let lands = Self::apply(fault).await?;
        lock(&self.posted).push((
            channel.clone(),
            message.client_msg_id.to_owned(),
            message.body.to_owned(),
        ));
        match (lands, fault) {
            (true, Some(Fault::Lands(status))) => Err(api_error(status, None)),
            (true, Some(Fault::LandsThenDies)) => panic!("the fake kills the task after the send"),
            _ => Ok(MessageSid::parse(&sid("IM")).expect("valid")),
        }
    }

    async fn find_sent(
        &self,
        channel: &ChannelSid,
        client_msg_id: &str,
    ) -> Result<Option<MessageSid>, FlexError> {
        let found = lock(&self.posted)
            .iter()
            .any(|(ch, id, _)| ch == channel && id == client_msg_id);
        Ok(found.then(|| MessageSid::parse(&sid("IM")).expect("valid")))
    }

    async fn resync(&self, _request: &ResyncRequest<'_>) -> Result<Vec<FlexEvent>, FlexError> {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.sync_faults).pop_front();
        Self::apply(fault).await?;
        Ok(lock(&self.missed).clone())
    }

    async fn close(&self, _: &ChannelSid, _: Option<&FlexRef>) -> Result<(), FlexError> {
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

//! What the world queues for the dispatcher: one delivery of one event to
//! one webhook ([`Job`]), and how the webhook is called ([`HookMethod`]).

/// How a webhook is called (`Configuration.Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookMethod {
    Get,
    Post,
}

impl HookMethod {
    pub const NAMES: [&'static str; 2] = ["GET", "POST"];

    /// `GET`/`POST`, any case (Chat documents upper case, Conversations lower).
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("GET") {
            Some(Self::Get)
        } else if value.eq_ignore_ascii_case("POST") {
            Some(Self::Post)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HookMethod::Get => "GET",
            HookMethod::Post => "POST",
        }
    }
}

/// One webhook to deliver: one event to one channel or conversation-scoped webhook.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The world generation that queued it; a reset voids older jobs.
    pub generation: u64,
    /// Jobs with the same key are delivered one after the other (per channel
    /// or conversation FIFO).
    pub queue: String,
    pub channel_sid: String,
    pub webhook_sid: String,
    pub url: String,
    pub method: HookMethod,
    pub event_type: String,
    /// Every parameter but `RetryCount`, which the dispatcher adds per attempt.
    pub params: Vec<(String, String)>,
    /// Extra attempts after a failure (`Configuration.RetryCount`).
    pub retries: u8,
}

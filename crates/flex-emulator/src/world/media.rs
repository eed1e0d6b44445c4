//! Media of the Media Content Service (MCS): files uploaded to a Chat
//! Service, attached to one Chat or Conversations message by `MediaSid`
//! (docs/twilio-reference.md §10). A file's content is reached through a
//! temporary link (`links.content_direct_temporary`) that works without
//! credentials for [`TEMPORARY_LINK_SECONDS`], as Twilio's signed media
//! URLs do.

use serde_json::{Value, json};

use super::render::Render;
use super::table::Keyed;
use crate::clock::Instant;

/// How long a temporary link works. Twilio does not document its
/// lifetime; five minutes is the emulator's choice.
pub(crate) const TEMPORARY_LINK_SECONDS: u64 = 300;

/// One uploaded file.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub sid: String,
    pub service_sid: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub content: Vec<u8>,
    /// Who uploaded it (`system` over REST; the agent's identity from the console).
    pub author: String,
    pub created: Instant,
    /// The message it was attached to (a media goes with one message).
    pub channel_sid: Option<String>,
    pub message_sid: Option<String>,
    /// Links handed out: (token, valid until, ms since the Unix epoch).
    pub links: Vec<(String, u64)>,
}

impl Keyed for Media {
    fn key(&self) -> &str {
        &self.sid
    }
}

/// What a message says of its media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaRef {
    pub sid: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: usize,
}

impl Media {
    pub fn reference(&self) -> MediaRef {
        MediaRef {
            sid: self.sid.clone(),
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            size: self.content.len(),
        }
    }

    /// The MCS JSON; `temporary` is the link for this answer.
    pub fn to_json(&self, render: &Render<'_>, temporary: &str) -> Value {
        let url = format!(
            "{}/v1/Services/{}/Media/{}",
            render.base, self.service_sid, self.sid
        );
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "service_sid": self.service_sid,
            "date_created": self.created.rest(),
            "date_upload_updated": self.created.rest(),
            "date_updated": self.created.rest(),
            "channel_sid": self.channel_sid,
            "message_sid": self.message_sid,
            "size": self.content.len(),
            "content_type": self.content_type,
            "filename": self.filename,
            "author": self.author,
            "category": "media",
            "url": url,
            "links": {
                "content": format!("{url}/Content"),
                "content_direct_temporary": temporary,
            },
        })
    }
}

impl MediaRef {
    /// A Chat message's `media` object.
    pub fn to_chat_json(&self) -> Value {
        json!({
            "sid": self.sid, "size": self.size,
            "content_type": self.content_type, "filename": self.filename,
        })
    }

    /// One item of a Conversations message's `media` array.
    pub fn to_conversations_json(&self) -> Value {
        json!({
            "sid": self.sid, "size": self.size, "content_type": self.content_type,
            "filename": self.filename, "category": "media",
        })
    }

    /// One item of a Conversations webhook's `Media` parameter.
    pub fn to_webhook_json(&self) -> Value {
        json!({
            "Sid": self.sid, "Filename": self.filename, "ContentType": self.content_type,
            "Size": self.size, "Category": "media",
        })
    }
}

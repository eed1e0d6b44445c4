//! Messages as both backends write and read them.
//!
//! - Our mark: every customer message carries `{"flexbridge":
//!   {"clientMessageId", "seq"}}` in its `Attributes`, so a retry after an
//!   ambiguous failure can find out whether an earlier attempt landed.
//! - The recent messages of a channel or conversation (one page, newest
//!   first): searched for our mark (`find_sent`), and for the agents'
//!   messages the bridge may have missed while it was down (`resync`).
//!
//! Chat names a message's author `from`, Conversations `author`; one type
//! reads both.

use super::client::{Product, TwilioClient};
use super::form::header;
use super::{FlexError, agents, parse_sid};
use crate::core::attachment::RemoteMedia;
use crate::core::backend::{FlexEvent, OutboundMessage, Posted};
use crate::core::ids::RemoteMessage;
use crate::core::ids::Seq;
use crate::flex::sid::{ChannelSid, FlexIdentity, MessageSid};

/// The key under which our metadata sits in a message's `Attributes`.
const ATTRIBUTES_KEY: &str = "flexbridge";

/// How many recent messages are read (one page; the maximum page size of
/// both Chat and Conversations).
const RECENT_WINDOW: &str = "100";

/// The `Attributes` of a customer message: our client message id and seq.
pub fn attributes(client_msg_id: &str, seq: Seq) -> String {
    serde_json::json!({
        ATTRIBUTES_KEY: { "clientMessageId": client_msg_id, "seq": seq.0 }
    })
    .to_string()
}

/// A message as both APIs list it (the fields the bridge reads).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RecentMessage {
    pub sid: String,
    #[serde(alias = "from")]
    pub author: Option<String>,
    pub body: Option<String>,
    pub attributes: Option<String>,
    /// Chat: one object or null; Conversations: an array or null.
    #[serde(default)]
    pub media: Option<serde_json::Value>,
    /// Its position in the channel.
    #[serde(default)]
    pub index: Option<i64>,
    /// When Flex made it (ISO 8601, `2016-08-01T22:10:40Z`).
    #[serde(default)]
    pub date_created: Option<String>,
}

/// A message's file as both APIs describe it (`sid`, `filename`,
/// `content_type`, `size`; Chat's `media` is one such object, the
/// Conversations' an array of them, of which the first is read).
pub fn media_of(media: Option<&serde_json::Value>) -> Option<RemoteMedia> {
    let item = match media? {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    let field = |name: &str| item.get(name).and_then(serde_json::Value::as_str);
    Some(RemoteMedia {
        sid: field("sid").or_else(|| field("Sid"))?.to_owned(),
        filename: field("filename")
            .or_else(|| field("Filename"))
            .map(str::to_owned),
        content_type: field("content_type")
            .or_else(|| field("ContentType"))
            .unwrap_or("application/octet-stream")
            .to_ascii_lowercase(),
        size: item
            .get("size")
            .or_else(|| item.get("Size"))
            .and_then(|size| {
                size.as_i64()
                    .or_else(|| size.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0),
    })
}

impl RecentMessage {
    /// What the bridge keeps of its own message in Flex.
    fn posted(&self) -> Result<Posted, FlexError> {
        let sid = parse_sid(&self.sid, MessageSid::parse)?;
        Ok(Posted {
            message: RemoteMessage::from(&sid),
            index: self.index,
        })
    }

    /// `date_created` in ms since the Unix epoch, if it reads.
    fn created_ms(&self) -> Option<i64> {
        let text = self.date_created.as_deref()?;
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
    }
}

/// How far Flex's clock and ours may differ when a message's date decides
/// which conversation of a channel it belongs to.
const CLOCK_SKEW_MS: i64 = 2_000;

/// The highest position among `messages` (a re-sync looked at every
/// message up to it).
pub fn through_index(messages: &[RecentMessage]) -> Option<i64> {
    messages.iter().filter_map(|m| m.index).max()
}

impl RecentMessage {
    /// Whether this is our message with `client_msg_id`.
    fn carries(&self, client_msg_id: &str) -> bool {
        let attributes = self.attributes.as_deref().unwrap_or("{}");
        serde_json::from_str::<serde_json::Value>(attributes)
            .ok()
            .and_then(|a| {
                a.get(ATTRIBUTES_KEY)?
                    .get("clientMessageId")?
                    .as_str()
                    .map(|id| id == client_msg_id)
            })
            .unwrap_or(false)
    }
}

/// The latest messages at `path` (a `…/Messages` list), newest first.
pub async fn recent(
    client: &TwilioClient,
    product: Product,
    path: &str,
) -> Result<Vec<RecentMessage>, FlexError> {
    client
        .list(
            product,
            path,
            &[("Order", "desc"), ("PageSize", RECENT_WINDOW)],
            "messages",
            1,
        )
        .await
}

/// Posts a customer message to `path` (a `…/Messages` list) with the
/// webhook header, as the customer's [`FlexIdentity`] under `author_param`
/// (Chat: `From`, Conversations: `Author`), carrying our mark.
pub async fn create(
    client: &TwilioClient,
    product: Product,
    path: &str,
    author_param: &'static str,
    message: &OutboundMessage<'_>,
) -> Result<Posted, FlexError> {
    let attributes = attributes(message.client_msg_id, message.seq);
    let identity = FlexIdentity::for_customer(message.customer);
    let mut form = vec![
        (author_param, identity.as_str()),
        ("Attributes", attributes.as_str()),
    ];
    // A file goes without text (Flex shows one or the other).
    match message.media {
        Some(media) => form.push(("MediaSid", media)),
        None => form.push(("Body", message.body)),
    }
    let created: RecentMessage = client.post_form(product, path, &form, true).await?;
    created.posted()
}

/// The SID of our message with `client_msg_id` among the recent messages
/// at `path`, if an earlier attempt landed.
pub async fn find_sent(
    client: &TwilioClient,
    product: Product,
    path: &str,
    client_msg_id: &str,
) -> Result<Option<Posted>, FlexError> {
    let recent = recent(client, product, path).await?;
    find_ours(&recent, client_msg_id)
}

/// Our message with `client_msg_id` among `messages`.
pub fn find_ours(
    messages: &[RecentMessage],
    client_msg_id: &str,
) -> Result<Option<Posted>, FlexError> {
    messages
        .iter()
        .find(|m| m.carries(client_msg_id))
        .map(RecentMessage::posted)
        .transpose()
}

/// The agents' messages among `newest_first`, oldest first, as the events
/// their webhooks would have been (`event_type`, keyed by `key`). Those
/// Flex dated before `since` (ms; the conversation's start) belong to an
/// earlier conversation of the channel and are left out.
pub fn agent_messages(
    newest_first: &[RecentMessage],
    customer: &FlexIdentity,
    channel: &ChannelSid,
    event_type: &str,
    key: impl Fn(&MessageSid) -> String,
    since: i64,
) -> Vec<FlexEvent> {
    newest_first
        .iter()
        .rev()
        .filter(|m| m.created_ms().is_none_or(|at| at >= since - CLOCK_SKEW_MS))
        .filter_map(|m| {
            let author = m.author.as_deref()?;
            let media = media_of(m.media.as_ref());
            let body = m.body.as_deref().unwrap_or_default();
            if body.trim().is_empty() && media.is_none() {
                return None;
            }
            let message_sid = MessageSid::parse(&m.sid).ok()?;
            agents::is_agent(author, customer).then(|| FlexEvent::AgentMessage {
                header: header(event_type, key(&message_sid), channel),
                message: RemoteMessage::from(&message_sid),
                index: m.index,
                author: author.to_owned(),
                body: body.to_owned(),
                media,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::CustomerId;

    const CH: &str = "CH0123456789abcdef0123456789abcdef";

    fn message(sid: u8, author: &str, body: &str, attributes: Option<String>) -> RecentMessage {
        RecentMessage {
            sid: format!("IM{sid:032x}"),
            author: Some(author.to_owned()),
            body: Some(body.to_owned()),
            attributes,
            media: None,
            index: Some(i64::from(sid)),
            date_created: None,
        }
    }

    #[test]
    fn a_file_is_read_from_either_apis_shape_and_an_agents_file_without_text_is_a_message() {
        let chat = serde_json::json!({"sid": "ME1", "filename": "a.pdf",
                                      "content_type": "application/pdf", "size": 5});
        let conversations = serde_json::json!([{"sid": "ME1", "filename": "a.pdf",
                                                "content_type": "application/pdf", "size": 5}]);
        let expected = RemoteMedia {
            sid: "ME1".into(),
            filename: Some("a.pdf".into()),
            content_type: "application/pdf".into(),
            size: 5,
        };
        assert_eq!(media_of(Some(&chat)), Some(expected.clone()));
        assert_eq!(media_of(Some(&conversations)), Some(expected.clone()));
        assert_eq!(media_of(Some(&serde_json::Value::Null)), None);

        let customer = FlexIdentity::for_customer(&CustomerId::generate());
        let channel = ChannelSid::parse(CH).unwrap();
        let mut file = message(1, "alice", "", None);
        file.media = Some(conversations);
        let events = agent_messages(
            &[file],
            &customer,
            &channel,
            "onMessageAdded",
            |s| s.to_string(),
            0,
        );
        assert!(
            matches!(&events[..], [FlexEvent::AgentMessage { media: Some(m), .. }] if *m == expected),
            "{events:?}"
        );
    }

    #[test]
    fn our_message_is_found_by_the_client_message_id_in_its_attributes() {
        let customer = FlexIdentity::for_customer(&CustomerId::generate());
        let messages = [
            message(3, "alice", "hi", Some("{}".into())),
            message(2, customer.as_str(), "b", Some(attributes("b", Seq(2)))),
            message(1, customer.as_str(), "a", Some(attributes("a", Seq(1)))),
        ];

        let found = find_ours(&messages, "a").unwrap();

        assert_eq!(
            found.map(|p| p.message.to_string()),
            Some(format!("IM{:032x}", 1))
        );
        assert_eq!(find_ours(&messages, "c").unwrap(), None);
    }

    #[test]
    fn chat_messages_name_their_author_from_and_read_the_same() {
        let chat: RecentMessage = serde_json::from_value(serde_json::json!({
            "sid": format!("IM{:032x}", 1), "from": "alice", "body": "hi", "attributes": "{}"
        }))
        .unwrap();
        assert_eq!(chat.author.as_deref(), Some("alice"));
    }

    #[test]
    fn only_agents_messages_with_a_body_become_events_oldest_first() {
        let customer = FlexIdentity::for_customer(&CustomerId::generate());
        let channel = ChannelSid::parse(CH).unwrap();
        let newest_first = [
            message(4, "bob", "second", None),
            message(3, "system", "Chat started", None),
            message(2, customer.as_str(), "mine", None),
            message(1, "alice", "first", None),
            message(0, "alice", "  ", None),
        ];

        let events = agent_messages(
            &newest_first,
            &customer,
            &channel,
            "onX",
            |sid| format!("k:{sid}"),
            0,
        );

        let bodies: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                FlexEvent::AgentMessage { body, .. } => Some(body.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(bodies, ["first", "second"]);
    }
}

//! `GET /transcript[?conversation=conv_…]`: one conversation of the
//! customer (default: their latest), as plain text, rendered here so what
//! the customer keeps is what the bridge stored (`docs/protocol.md`).
//!
//! Authenticated like the socket, by the resume token, sent as
//! `Authorization: Bearer <token>` (never in the URL, which logs and
//! histories keep). Another customer's conversation answers 404, exactly
//! like one that does not exist. No CORS headers: only the chat's own
//! page (same origin) can read it. `Cache-Control: no-store`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::WebState;
use crate::core::bridge::Transcript;
use crate::core::chain;
use crate::core::clock::format_ms;
use crate::core::conversation::CloseReason;
use crate::core::ids::{ConversationId, ResumeToken};
use crate::core::model::{CustomerRecord, Direction};

#[derive(Debug, Deserialize)]
pub(super) struct TranscriptQuery {
    conversation: Option<String>,
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(super) async fn download(
    State(state): State<WebState>,
    Query(query): Query<TranscriptQuery>,
    headers: HeaderMap,
) -> Response {
    let bridge = &state.inner.bridge;
    let Some(token) = bearer(&headers).and_then(|t| ResumeToken::parse(t).ok()) else {
        return plain(
            StatusCode::UNAUTHORIZED,
            "send the resume token: Authorization: Bearer <token>",
        );
    };
    let customer = match bridge.authenticate(&token).await {
        Ok(Some(customer)) => customer,
        Ok(None) => return plain(StatusCode::UNAUTHORIZED, "unknown token"),
        Err(error) => {
            tracing::error!(error.cause_chain = %chain(&error), "checking a resume token");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let conversation = match query.conversation.as_deref().map(ConversationId::parse) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return plain(StatusCode::NOT_FOUND, "no such conversation"),
    };
    let transcript = match bridge.transcript(&customer.id, conversation.as_ref()).await {
        Ok(Some(transcript)) => transcript,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such conversation"),
        Err(error) => {
            tracing::error!(error.cause_chain = %chain(&error), "reading a transcript");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let title = state.inner.widget.title.as_deref().unwrap_or("Chat");
    let text = render(title, &customer, &transcript);
    let day = format_ms(transcript.conversation.created_at);
    let filename = format!("chat-{}.txt", day.get(..10).unwrap_or("transcript"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        text,
    )
        .into_response()
}

/// `2026-11-25 17:20:00 UTC`.
fn when(ms: i64) -> String {
    let iso = format_ms(ms);
    match (iso.get(..10), iso.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => iso,
    }
}

/// Who ended a closed conversation, as the chat's notice says it.
pub fn ended_line(reason: Option<CloseReason>, agent: Option<&str>) -> Option<String> {
    Some(match reason? {
        CloseReason::CustomerEnded => "You ended the chat.".to_owned(),
        CloseReason::AgentEnded => match agent {
            Some(agent) => format!("{agent} ended the chat."),
            None => "The chat was ended.".to_owned(),
        },
        CloseReason::OpenFailed | CloseReason::ChannelGone => {
            "The chat ended: it could not be reached.".to_owned()
        }
    })
}

/// The transcript as text: a heading, one line per message (time,
/// author, text; continuation lines indented), and how it ended.
pub fn render(title: &str, customer: &CustomerRecord, transcript: &Transcript) -> String {
    let conversation = &transcript.conversation;
    let mut out = format!(
        "{title} — transcript\nConversation {} with {}, started {}\n",
        conversation.id,
        customer.name,
        when(conversation.created_at)
    );
    if let Some(agent) = &conversation.agent_name {
        out.push_str(&format!("Agent: {agent}\n"));
    }
    out.push('\n');
    for message in &transcript.messages {
        let author = match message.direction {
            Direction::Customer => format!("{} (you)", message.author),
            Direction::Agent => message.author.clone(),
        };
        let body = match &message.attachment {
            Some(file) => format!(
                "[attachment] {} ({}, {} bytes)",
                file.filename, file.content_type, file.size
            ),
            None => message.body.replace('\n', "\n    "),
        };
        out.push_str(&format!(
            "[{}] {author}: {body}\n",
            when(message.created_at)
        ));
    }
    if let Some(line) = ended_line(
        conversation.close_reason,
        conversation.agent_name.as_deref(),
    ) {
        out.push_str(&format!("\n{line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conversation::ConversationState;
    use crate::core::ids::{CustomerId, Seq, TokenHash};
    use crate::core::model::{ConversationRecord, MessageRecord};
    use crate::core::pre_engagement::PreEngagement;

    #[test]
    fn a_transcript_lists_every_message_with_its_time_and_who_ended_it() {
        let customer = CustomerRecord {
            id: CustomerId::generate(),
            name: "Ada".into(),
            token_hash: TokenHash::from_bytes(&[0; 32]).unwrap(),
            pre_engagement: PreEngagement::default(),
        };
        let conversation = ConversationRecord {
            id: ConversationId::parse("conv_0123456789abcdef0123456789abcdef").unwrap(),
            customer_id: customer.id.clone(),
            state: ConversationState::Closed,
            backend: crate::flex::BackendKind::Conversations.name(),
            flex_channel: None,
            flex_ref: None,
            agent_name: Some("alice".into()),
            close_reason: Some(CloseReason::AgentEnded),
            created_at: 1_795_627_200_000,
        };
        let message = |seq, direction, author: &str, body: &str| MessageRecord {
            id: seq,
            seq: Seq(seq),
            conversation_id: conversation.id.clone(),
            direction,
            author: author.into(),
            body: body.into(),
            client_msg_id: None,
            created_at: 1_795_627_200_000 + seq * 1000,
            attachment: None,
        };
        let transcript = Transcript {
            messages: vec![
                message(1, Direction::Customer, "Ada", "Hi\nthere"),
                message(2, Direction::Agent, "alice", "Hello <b>Ada</b>"),
            ],
            conversation,
        };
        let text = render("Shop chat", &customer, &transcript);
        assert_eq!(
            text,
            "Shop chat — transcript\n\
             Conversation conv_0123456789abcdef0123456789abcdef with Ada, started 2026-11-25 17:20:00 UTC\n\
             Agent: alice\n\n\
             [2026-11-25 17:20:01 UTC] Ada (you): Hi\n    there\n\
             [2026-11-25 17:20:02 UTC] alice: Hello <b>Ada</b>\n\n\
             alice ended the chat.\n"
        );
        assert_eq!(
            ended_line(Some(CloseReason::CustomerEnded), Some("alice")).unwrap(),
            "You ended the chat."
        );
        assert_eq!(ended_line(None, None), None);
    }
}

//! What MCS does: store an upload, answer a media with a fresh temporary
//! link, serve content for a link until it expires, and attach a media to
//! the one message that carries it.

use super::World;
use super::error::WorldError;
use super::media::{Media, MediaRef, TEMPORARY_LINK_SECONDS};
use crate::clock::Instant;
use crate::sid::Prefix;

/// A new upload.
#[derive(Debug, Clone)]
pub(crate) struct NewMedia {
    pub filename: Option<String>,
    pub content_type: String,
    pub content: Vec<u8>,
    pub author: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl World {
    fn check_service(&self, service_sid: &str) -> Result<(), WorldError> {
        self.chat.services.require("Service", service_sid).map(drop)
    }

    /// Stores an upload to the Chat Service `service_sid`; its SID.
    pub fn upload_media(&mut self, service_sid: &str, new: NewMedia) -> Result<String, WorldError> {
        self.check_service(service_sid)?;
        if new.content.is_empty() {
            return Err(WorldError::invalid("Content", "the body is empty"));
        }
        let sid = self.sid(Prefix::Media);
        self.media.insert(Media {
            sid: sid.clone(),
            service_sid: service_sid.to_owned(),
            filename: new.filename.filter(|f| !f.is_empty()),
            content_type: new.content_type,
            content: new.content,
            author: new.author,
            created: Instant::now(),
            channel_sid: None,
            message_sid: None,
            links: Vec::new(),
        });
        Ok(sid)
    }

    /// The media `sid` of `service_sid` with a new temporary link
    /// (`{base}/_media/{sid}?Token=…`), valid [`TEMPORARY_LINK_SECONDS`].
    pub fn media_with_link(
        &mut self,
        service_sid: &str,
        sid: &str,
        base: &str,
    ) -> Result<(Media, String), WorldError> {
        self.check_service(service_sid)?;
        self.media
            .get(sid)
            .filter(|m| m.service_sid == service_sid)
            .ok_or_else(|| WorldError::not_found("Media", sid))?;
        let token = self.sid(Prefix::Media)[2..].to_owned();
        let now = now_ms();
        let media = self.media.require_mut("Media", sid)?;
        media.links.retain(|(_, until)| *until > now);
        media
            .links
            .push((token.clone(), now + TEMPORARY_LINK_SECONDS * 1000));
        let link = format!("{base}/_media/{sid}?Token={token}");
        Ok((media.clone(), link))
    }

    /// The content behind a temporary link, while it works.
    pub fn temporary_content(&self, sid: &str, token: &str) -> Option<&Media> {
        let now = now_ms();
        self.media
            .get(sid)
            .filter(|m| m.links.iter().any(|(t, until)| t == token && *until > now))
    }

    /// Whether media `sid` may go with a new message (it exists and no
    /// message carries it yet), checked before the message changes anything.
    pub fn check_media(&self, sid: &str) -> Result<(), WorldError> {
        match self.media.get(sid) {
            None => Err(WorldError::invalid("MediaSid", &format!("no media {sid}"))),
            Some(media) if media.message_sid.is_some() => Err(WorldError::refused(
                50508,
                "Media already sent with another message",
            )),
            Some(_) => Ok(()),
        }
    }

    /// Attaches media `sid` to a message (once: 50508 "Media already sent
    /// with another message" otherwise).
    pub fn attach_media(
        &mut self,
        sid: &str,
        channel_sid: &str,
        message_sid: &str,
    ) -> Result<MediaRef, WorldError> {
        let media = self
            .media
            .get_mut(sid)
            .ok_or_else(|| WorldError::invalid("MediaSid", &format!("no media {sid}")))?;
        if media.message_sid.is_some() {
            return Err(WorldError::refused(
                50508,
                "Media already sent with another message",
            ));
        }
        media.channel_sid = Some(channel_sid.to_owned());
        media.message_sid = Some(message_sid.to_owned());
        Ok(media.reference())
    }
}

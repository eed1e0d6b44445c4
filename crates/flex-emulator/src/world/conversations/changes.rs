//! What REST calls and agents do to conversations: create, update, delete
//! (by CH SID or unique name), participants, messages and scoped webhooks.
//! Every change emits its SSE event and fires its conversation event
//! (`events.rs`) when the actor allows it.
//!
//! Twilio's codes: 409 50353 (unique name taken), 400 50390 (a unique name
//! shaped like a CH SID), 400 50384 (created `closed`), 409 50377 (any change
//! to a closed conversation), 409 50433 (participant identity already
//! there), 400 50361 (a sixth scoped webhook).

use serde_json::json;

use super::events::{conversation_event, message_event, participant_event};
use super::lifecycle::closed_error;
use super::model::{
    Conversation, ConversationMessage, ConversationWebhook, MAX_CONVERSATION_WEBHOOKS,
    MessagingBinding, Participant, Scope,
};
use super::state::{ConversationState, StateReason};
use super::timers::{TimerDuration, Timers};
use crate::clock::{Instant, SentDates, unix_micros};
use crate::sid::{Prefix, has_shape};
use crate::world::World;
use crate::world::actor::Actor;
use crate::world::error::WorldError;
use crate::world::hooks::HookSettings;
use crate::world::table::Table;

/// `Timers.Inactive` / `Timers.Closed` as sent: `None` = not sent,
/// `Some(None)` = sent empty (the timer is removed), `Some(Some(_))` = set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimerSettings {
    pub inactive: Option<Option<TimerDuration>>,
    pub closed: Option<Option<TimerDuration>>,
}

impl TimerSettings {
    fn is_empty(self) -> bool {
        self.inactive.is_none() && self.closed.is_none()
    }

    fn apply(self, timers: &mut Timers) {
        if let Some(inactive) = self.inactive {
            timers.inactive = inactive;
            if inactive.is_none() {
                timers.date_inactive = None;
            }
        }
        if let Some(closed) = self.closed {
            timers.closed = closed;
            if closed.is_none() {
                timers.date_closed = None;
            }
        }
    }
}

/// `CreateConversation` / `UpdateConversation` parameters, parsed; on an
/// update `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConversationChange {
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    pub attributes: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub state: Option<ConversationState>,
    pub timers: TimerSettings,
    pub email_address: Option<String>,
    pub email_name: Option<String>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
}

/// `CreateConversationParticipant` parameters, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewParticipant {
    pub identity: Option<String>,
    pub binding: Option<MessagingBinding>,
    pub attributes: Option<String>,
    pub role_sid: Option<String>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
}

/// `CreateConversationMessage` parameters, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewConversationMessage {
    pub author: Option<String>,
    pub body: Option<String>,
    pub attributes: Option<String>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
    /// `MediaSid`: an uploaded file the message carries.
    pub media_sid: Option<String>,
}

impl World {
    /// A conversation of `service_sid` by CH SID or unique name.
    pub fn find_conversation(
        &self,
        service_sid: &str,
        id: &str,
    ) -> Result<&Conversation, WorldError> {
        self.service(service_sid)?;
        let conversations = &self.conversations;
        conversations
            .get(id)
            .filter(|c| c.service_sid == service_sid)
            .or_else(|| {
                conversations
                    .find(|c| c.service_sid == service_sid && c.unique_name.as_deref() == Some(id))
            })
            .ok_or_else(|| WorldError::not_found("Conversation", id))
    }

    fn check_unique_name(
        &self,
        service_sid: &str,
        name: &str,
        except: &str,
    ) -> Result<(), WorldError> {
        if has_shape(name, Prefix::Channel) {
            return Err(WorldError::refused(
                50390,
                format!(
                    "Invalid parameter UniqueName: {name} matches the conversation SID pattern"
                ),
            ));
        }
        let taken = self
            .conversations
            .find(|c| {
                c.service_sid == service_sid
                    && c.sid != except
                    && c.unique_name.as_deref() == Some(name)
            })
            .is_some();
        if taken {
            return Err(WorldError::conflict(
                50353,
                format!("Conversation with provided unique name already exists: {name}"),
            ));
        }
        Ok(())
    }

    /// Makes a conversation (no webhooks exist yet, so nothing fires).
    pub fn create_conversation(
        &mut self,
        service_sid: &str,
        new: ConversationChange,
    ) -> Result<String, WorldError> {
        self.service(service_sid)?;
        if let Some(name) = &new.unique_name {
            self.check_unique_name(service_sid, name, "")?;
        }
        let state = new.state.unwrap_or(ConversationState::Active);
        if state == ConversationState::Closed {
            return Err(WorldError::refused(
                50384,
                "Invalid parameter State: a conversation can't be created closed",
            ));
        }
        let sid = self.sid(Prefix::Channel);
        let now = Instant::now();
        let (created, updated) = new.dates.new_resource(now);
        let mut timers = Timers::default();
        new.timers.apply(&mut timers);
        timers.restart(state, now);
        self.conversations.insert(Conversation {
            sid: sid.clone(),
            service_sid: service_sid.to_owned(),
            friendly_name: new.friendly_name,
            unique_name: new.unique_name,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            messaging_service_sid: new.messaging_service_sid,
            state,
            timers,
            email_binding: (new.email_address, new.email_name),
            created,
            updated,
            participants: Table::default(),
            messages: Vec::new(),
            webhooks: Table::default(),
        });
        self.emit_conversation("conversation.created", &sid);
        self.arm_conversation_alarm(&sid);
        Ok(sid)
    }

    /// Updates a conversation: `onConversationUpdated`, then, when `State`
    /// changes it, `onConversationStateUpdated` (`Reason=API`).
    pub fn update_conversation(
        &mut self,
        service_sid: &str,
        id: &str,
        change: ConversationChange,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let conversation = self.find_conversation(service_sid, id)?;
        let sid = conversation.sid.clone();
        if conversation.state == ConversationState::Closed {
            return Err(closed_error(&sid));
        }
        if let Some(name) = &change.unique_name {
            self.check_unique_name(service_sid, name, &sid)?;
        }
        let now = Instant::now();
        if let Some(conversation) = self.conversations.get_mut(&sid) {
            macro_rules! set_some {
                ($($field:ident),*) => {$(
                    if let Some(value) = change.$field {
                        conversation.$field = Some(value);
                    }
                )*};
            }
            set_some!(friendly_name, unique_name, messaging_service_sid);
            if let Some(attributes) = change.attributes {
                conversation.attributes = attributes;
            }
            if change.email_address.is_some() {
                conversation.email_binding.0 = change.email_address;
            }
            if change.email_name.is_some() {
                conversation.email_binding.1 = change.email_name;
            }
            if !change.timers.is_empty() {
                change.timers.apply(&mut conversation.timers);
                conversation.timers.restart(conversation.state, now);
            }
            let (created, updated) = (&mut conversation.created, &mut conversation.updated);
            change.dates.update(created, updated, now);
        }
        self.emit_conversation("conversation.updated", &sid);
        if let Some(conversation) = self.conversations.get(&sid) {
            let fired = conversation_event("onConversationUpdated", conversation);
            self.fire_conversation(&sid, fired, actor);
        }
        if let Some(state) = change.state {
            self.set_conversation_state(&sid, state, StateReason::Api, actor)?;
        }
        self.arm_conversation_alarm(&sid);
        Ok(sid)
    }

    /// Deletes a conversation (`onConversationRemoved` first); Flex closes
    /// the interaction channels bound to it.
    pub fn delete_conversation(
        &mut self,
        service_sid: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let conversation = self.find_conversation(service_sid, id)?;
        let sid = conversation.sid.clone();
        let mut fired = conversation_event("onConversationRemoved", conversation);
        fired.push("DateRemoved", Instant::now().webhook());
        self.fire_conversation(&sid, fired, actor);
        self.close_interactions_of(&sid);
        self.conversations.remove(&sid);
        self.emit("conversation.deleted", json!({ "conversation_sid": sid }));
        Ok(())
    }

    fn open_conversation(&self, sid: &str) -> Result<&Conversation, WorldError> {
        let conversation = self.conversations.require("Conversation", sid)?;
        if conversation.state == ConversationState::Closed {
            return Err(closed_error(sid));
        }
        Ok(conversation)
    }

    pub fn add_participant(
        &mut self,
        conversation_sid: &str,
        new: NewParticipant,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let conversation = self.open_conversation(conversation_sid)?;
        if let Some(identity) = &new.identity
            && conversation.participant_by_identity(identity).is_some()
        {
            return Err(WorldError::conflict(
                50433,
                format!("Participant already exists: {identity}"),
            ));
        }
        let now = Instant::now();
        self.conversation_activity(conversation_sid, now, actor)?;
        let sid = self.sid(Prefix::Member);
        let (created, updated) = new.dates.new_resource(now);
        let participant = Participant {
            sid: sid.clone(),
            identity: new.identity,
            binding: new.binding,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            role_sid: new
                .role_sid
                .unwrap_or_else(|| self.bootstrap.channel_user_role_sid.clone()),
            created,
            updated,
        };
        let fired = participant_event("onParticipantAdded", conversation_sid, &participant);
        if let Some(conversation) = self.conversations.get_mut(conversation_sid) {
            conversation.participants.insert(participant);
        }
        self.emit_participant("participant.added", conversation_sid, &sid);
        self.fire_conversation(conversation_sid, fired, actor);
        Ok(sid)
    }

    /// Removes a participant (by MB SID or identity).
    pub fn remove_participant(
        &mut self,
        conversation_sid: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let participant = self
            .open_conversation(conversation_sid)?
            .participant(id)
            .cloned()
            .ok_or_else(|| WorldError::not_found("Participant", id))?;
        self.emit_participant("participant.removed", conversation_sid, &participant.sid);
        if let Some(conversation) = self.conversations.get_mut(conversation_sid) {
            conversation.participants.remove(&participant.sid);
        }
        let mut fired = participant_event("onParticipantRemoved", conversation_sid, &participant);
        let now = Instant::now().webhook();
        fired.push("DateUpdated", now.clone());
        fired.push("DateRemoved", now);
        self.fire_conversation(conversation_sid, fired, actor);
        Ok(())
    }

    pub fn post_conversation_message(
        &mut self,
        conversation_sid: &str,
        new: NewConversationMessage,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let now = Instant::now();
        if let Some(media) = &new.media_sid {
            self.check_media(media)?;
        }
        self.conversation_activity(conversation_sid, now, actor)?;
        let sid = self.sid(Prefix::Message);
        let media = match &new.media_sid {
            Some(media) => Some(self.attach_media(media, conversation_sid, &sid)?),
            None => None,
        };
        let conversation = self
            .conversations
            .require_mut("Conversation", conversation_sid)?;
        let author = new.author.unwrap_or_else(|| "system".into());
        let (created, updated) = new.dates.new_resource(now);
        let message = ConversationMessage {
            sid: sid.clone(),
            index: conversation
                .messages
                .last()
                .map_or(0, |last| last.index + 1),
            participant_sid: conversation
                .participant_by_identity(&author)
                .map(|p| p.sid.clone()),
            author,
            body: new.body,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            created,
            updated,
            received_at_us: unix_micros(),
            media,
        };
        let fired = message_event(conversation, &message);
        conversation.messages.push(message);
        let data = self.conversations.get(conversation_sid).and_then(|c| {
            let render = self.event_render();
            c.messages.last().map(|m| m.to_control_json(c, &render))
        });
        self.emit(
            "message.added",
            json!({ "channel_sid": conversation_sid, "message": data }),
        );
        self.fire_conversation(conversation_sid, fired, actor);
        Ok(sid)
    }

    /// Adds a scoped webhook (`CreateConversationScopedWebhook`, checked).
    pub fn add_conversation_webhook(
        &mut self,
        conversation_sid: &str,
        settings: HookSettings,
        replay_after: Option<u64>,
    ) -> Result<String, WorldError> {
        let conversation = self
            .conversations
            .require("Conversation", conversation_sid)?;
        if conversation.webhooks.len() >= MAX_CONVERSATION_WEBHOOKS {
            return Err(WorldError::refused(
                50361,
                format!(
                    "Too many conversation webhooks: a conversation holds at most {MAX_CONVERSATION_WEBHOOKS}"
                ),
            ));
        }
        let sid = self.sid(Prefix::Webhook);
        let now = Instant::now();
        if let Some(conversation) = self.conversations.get_mut(conversation_sid) {
            conversation.webhooks.insert(ConversationWebhook {
                sid: sid.clone(),
                settings,
                replay_after,
                created: now,
                updated: now,
            });
        }
        Ok(sid)
    }

    pub fn delete_conversation_webhook(
        &mut self,
        conversation_sid: &str,
        webhook_sid: &str,
    ) -> Result<(), WorldError> {
        self.conversations
            .require_mut("Conversation", conversation_sid)?
            .webhooks
            .remove(webhook_sid)
            .map(drop)
            .ok_or_else(|| WorldError::not_found("Webhook", webhook_sid))
    }

    fn emit_participant(
        &mut self,
        kind: &'static str,
        conversation_sid: &str,
        participant_sid: &str,
    ) {
        let data = self.conversations.get(conversation_sid).and_then(|c| {
            let render = self.event_render();
            c.participants
                .get(participant_sid)
                .map(|p| p.to_json(c, Scope::Default, &render))
        });
        self.emit(
            kind,
            json!({ "conversation_sid": conversation_sid, "participant": data }),
        );
    }
}

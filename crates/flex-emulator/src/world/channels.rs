//! What REST calls and agents do to Chat: channels, members, messages,
//! channel webhooks and users. Every change emits its SSE event and fires
//! the matching channel event (`fan_out.rs`), which sends webhooks only when
//! the actor allows it (`X-Twilio-Webhook-Enabled: true`, or an agent).
//! A Flex chat that REST makes `INACTIVE` settles its tasks here too.

use serde_json::json;

use super::World;
use super::actor::{Actor, Source};
use super::chat::{
    Channel, ChannelType, ChannelWebhook, MAX_CHANNEL_WEBHOOKS, Member, Message, User,
    channel_event, member_event, message_event,
};
use super::error::WorldError;
use super::hooks::HookSettings;
use super::table::Table;
use super::taskrouter::{ChannelRef, EndedBy};
use crate::clock::{Instant, SentDates, unix_micros};
use crate::sid::Prefix;

/// `CreateChannel` / `UpdateChannel` parameters, parsed. On an update `None`
/// leaves a field as it is; on a create it is unset (attributes `{}`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelChange {
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    pub attributes: Option<String>,
    pub created_by: Option<String>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
}

/// A member to add (`CreateMember` parameters, parsed).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewMember {
    pub identity: String,
    pub role_sid: Option<String>,
    pub attributes: Option<String>,
    pub last_consumed_message_index: Option<u64>,
    pub last_consumption: Option<Instant>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
}

impl NewMember {
    pub fn identity(identity: &str) -> Self {
        Self {
            identity: identity.to_owned(),
            ..Self::default()
        }
    }
}

/// A message to post (`CreateMessage` parameters, parsed).
#[derive(Debug, Clone, Default)]
pub(crate) struct NewMessage {
    pub from: Option<String>,
    pub body: Option<String>,
    pub attributes: Option<String>,
    /// `DateCreated` / `DateUpdated`, when sent.
    pub dates: SentDates,
    /// `MediaSid`: an uploaded file the message carries.
    pub media_sid: Option<String>,
}

/// `UpdateChannelWebhook` parameters; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct WebhookUpdate {
    pub url: Option<String>,
    pub method: Option<String>,
    pub filters: Option<Vec<String>>,
    pub triggers: Option<Vec<String>>,
    pub flow_sid: Option<String>,
    pub retry_count: Option<u8>,
}

/// `CreateUser` parameters, parsed.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
    pub identity: String,
    pub role_sid: Option<String>,
    pub attributes: Option<String>,
    pub friendly_name: Option<String>,
}

impl World {
    /// A channel of `service_sid` by CH SID or unique name.
    pub fn find_channel(&self, service_sid: &str, id: &str) -> Result<&Channel, WorldError> {
        self.service(service_sid)?;
        let channels = &self.chat.channels;
        channels
            .get(id)
            .filter(|channel| channel.service_sid == service_sid)
            .or_else(|| {
                channels.find(|channel| {
                    channel.service_sid == service_sid && channel.unique_name.as_deref() == Some(id)
                })
            })
            .ok_or_else(|| WorldError::not_found("Channel", id))
    }

    /// 409 50307 when another channel (`except` aside) of the service has
    /// this unique name.
    fn check_channel_unique_name(
        &self,
        service_sid: &str,
        unique_name: Option<&str>,
        except: &str,
    ) -> Result<(), WorldError> {
        let Some(unique_name) = unique_name else {
            return Ok(());
        };
        let taken = self.chat.channels.find(|c| {
            c.service_sid == service_sid
                && c.sid != except
                && c.unique_name.as_deref() == Some(unique_name)
        });
        match taken {
            Some(_) => Err(WorldError::conflict(
                50307,
                format!("Channel with provided unique name already exists: {unique_name}"),
            )),
            None => Ok(()),
        }
    }

    /// Makes a channel. It has no webhooks yet, so nothing fires.
    pub fn create_channel(
        &mut self,
        service_sid: &str,
        kind: ChannelType,
        new: ChannelChange,
    ) -> Result<String, WorldError> {
        self.service(service_sid)?;
        self.check_channel_unique_name(service_sid, new.unique_name.as_deref(), "")?;
        let sid = self.sid(Prefix::Channel);
        let (created, updated) = new.dates.new_resource(Instant::now());
        self.chat.channels.insert(Channel {
            sid: sid.clone(),
            service_sid: service_sid.to_owned(),
            friendly_name: new.friendly_name,
            unique_name: new.unique_name,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            kind,
            created_by: new.created_by,
            created,
            updated,
            members: Table::default(),
            messages: Vec::new(),
            webhooks: Table::default(),
            flex: None,
        });
        self.emit_channel("channel.created", &sid);
        Ok(sid)
    }

    /// Changes a channel. A Flex chat that REST makes `INACTIVE` is the
    /// customer's side ending it ([`World::flex_chat_ended`]); an agent's end
    /// (`agents.rs`) settles its own task.
    pub fn update_channel(
        &mut self,
        service_sid: &str,
        id: &str,
        update: ChannelChange,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let channel = self.find_channel(service_sid, id)?;
        let (sid, was_active) = (channel.sid.clone(), channel.is_active());
        self.check_channel_unique_name(service_sid, update.unique_name.as_deref(), &sid)?;
        if let Some(channel) = self.chat.channels.get_mut(&sid) {
            if let Some(value) = update.friendly_name {
                channel.friendly_name = Some(value);
            }
            if let Some(value) = update.unique_name {
                channel.unique_name = Some(value);
            }
            if let Some(value) = update.attributes {
                channel.attributes = value;
            }
            if let Some(value) = update.created_by {
                channel.created_by = Some(value);
            }
            let now = Instant::now();
            update
                .dates
                .update(&mut channel.created, &mut channel.updated, now);
        }
        self.emit_channel("channel.updated", &sid);
        if let Some(channel) = self.chat.channels.get(&sid) {
            let fired = channel_event("onChannelUpdated", channel);
            self.fire(&sid, fired, actor);
        }
        let ended = self
            .chat
            .channels
            .get(&sid)
            .is_some_and(|c| c.flex.is_some() && !c.is_active());
        if was_active && ended && actor.source == Source::Api {
            self.flex_chat_ended(&sid)?;
        }
        Ok(sid)
    }

    /// A Flex chat channel went `INACTIVE` over REST (the customer's side
    /// ended the chat): as when an agent ends it, its accepted task wraps
    /// (then completes after the wrap-up time), one not yet accepted is
    /// canceled, and its Studio execution ends.
    fn flex_chat_ended(&mut self, channel_sid: &str) -> Result<(), WorldError> {
        let tasks: Vec<String> = self
            .taskrouter
            .tasks
            .iter()
            .filter(|t| match &t.target {
                Some(ChannelRef::Chat { channel_sid: c, .. }) => c == channel_sid,
                _ => false,
            })
            .map(|t| t.sid.clone())
            .collect();
        self.mark_ended(&tasks, EndedBy::Customer);
        self.settle_tasks(&tasks, false)?;
        self.end_executions(channel_sid);
        Ok(())
    }

    pub fn delete_channel(
        &mut self,
        service_sid: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let channel = self.find_channel(service_sid, id)?;
        let sid = channel.sid.clone();
        let mut fired = channel_event("onChannelDestroyed", channel);
        fired.push("DateDestroyed", Instant::now().webhook());
        self.fire(&sid, fired, actor);
        self.chat.channels.remove(&sid);
        self.emit("channel.deleted", json!({ "channel_sid": sid }));
        Ok(())
    }

    pub fn add_member(
        &mut self,
        channel_sid: &str,
        new: NewMember,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let channel = self.chat.channels.require("Channel", channel_sid)?;
        if channel.member_by_identity(&new.identity).is_some() {
            return Err(WorldError::conflict(
                50404,
                format!("Member already exists: {}", new.identity),
            ));
        }
        let sid = self.sid(Prefix::Member);
        let (created, updated) = new.dates.new_resource(Instant::now());
        let member = Member {
            sid: sid.clone(),
            identity: new.identity,
            role_sid: new
                .role_sid
                .unwrap_or_else(|| self.bootstrap.channel_user_role_sid.clone()),
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            last_consumed_message_index: new.last_consumed_message_index,
            last_consumption: new.last_consumption,
            created,
            updated,
        };
        let reason = match actor.source {
            Source::Sdk => "JOINED",
            Source::Api => "ADDED",
        };
        let fired = member_event("onMemberAdded", channel_sid, &member, reason);
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            channel.members.insert(member);
        }
        self.emit_member("member.added", channel_sid, &sid);
        self.fire(channel_sid, fired, actor);
        Ok(sid)
    }

    pub fn remove_member(
        &mut self,
        channel_sid: &str,
        id: &str,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let channel = self.chat.channels.require("Channel", channel_sid)?;
        let member = channel
            .member(id)
            .cloned()
            .ok_or_else(|| WorldError::not_found("Member", id))?;
        let reason = match actor.source {
            Source::Sdk => "LEFT",
            Source::Api => "REMOVED",
        };
        let mut fired = member_event("onMemberRemoved", channel_sid, &member, reason);
        fired.push("DateRemoved", Instant::now().webhook());
        let data = {
            let render = self.event_render();
            channel
                .members
                .get(&member.sid)
                .map(|m| m.to_json(channel, &render))
        };
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            channel.members.remove(&member.sid);
        }
        self.emit(
            "member.removed",
            json!({ "channel_sid": channel_sid, "member": data }),
        );
        self.fire(channel_sid, fired, actor);
        Ok(())
    }

    pub fn post_message(
        &mut self,
        channel_sid: &str,
        new: NewMessage,
        actor: &Actor,
    ) -> Result<String, WorldError> {
        let channel = self.chat.channels.require("Channel", channel_sid)?;
        let index = channel.messages.last().map_or(0, |last| last.index + 1);
        if let Some(media) = &new.media_sid {
            self.check_media(media)?;
        }
        let sid = self.sid(Prefix::Message);
        let media = match &new.media_sid {
            Some(media) => Some(self.attach_media(media, channel_sid, &sid)?),
            None => None,
        };
        let (created, updated) = new.dates.new_resource(Instant::now());
        let message = Message {
            sid: sid.clone(),
            index,
            from: new.from.unwrap_or_else(|| "system".into()),
            body: new.body,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            created,
            updated,
            received_at_us: unix_micros(),
            media,
        };
        let fired = message_event(channel_sid, &message);
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            channel.messages.push(message);
        }
        let data = self.chat.channels.get(channel_sid).and_then(|channel| {
            let render = self.event_render();
            let last = channel.messages.last();
            last.map(|m| m.to_control_json(channel, &render))
        });
        self.emit(
            "message.added",
            json!({ "channel_sid": channel_sid, "message": data }),
        );
        self.fire(channel_sid, fired, actor);
        Ok(sid)
    }

    /// Adds a channel webhook (`CreateChannelWebhook`, checked) that makes
    /// `retry_count` extra attempts after a failed delivery.
    pub fn add_webhook(
        &mut self,
        channel_sid: &str,
        settings: HookSettings,
        retry_count: u8,
    ) -> Result<String, WorldError> {
        let channel = self.chat.channels.require("Channel", channel_sid)?;
        if channel.webhooks.len() >= MAX_CHANNEL_WEBHOOKS {
            return Err(WorldError::refused(
                50321,
                format!(
                    "Too many channel webhooks: a channel holds at most {MAX_CHANNEL_WEBHOOKS}"
                ),
            ));
        }
        let sid = self.sid(Prefix::Webhook);
        let now = Instant::now();
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            channel.webhooks.insert(ChannelWebhook {
                sid: sid.clone(),
                settings,
                retry_count,
                created: now,
                updated: now,
            });
        }
        Ok(sid)
    }

    pub fn update_webhook(
        &mut self,
        channel_sid: &str,
        webhook_sid: &str,
        update: WebhookUpdate,
    ) -> Result<(), WorldError> {
        let webhook = self
            .chat
            .channels
            .require_mut("Channel", channel_sid)?
            .webhooks
            .require_mut("Webhook", webhook_sid)?;
        let settings = &mut webhook.settings;
        if let Some(url) = update.url {
            settings.url = Some(url);
        }
        if let Some(method) = update.method {
            settings.method = method;
        }
        if let Some(filters) = update.filters {
            settings.filters = filters;
        }
        if let Some(triggers) = update.triggers {
            settings.triggers = triggers;
        }
        if let Some(flow_sid) = update.flow_sid {
            settings.flow_sid = Some(flow_sid);
        }
        if let Some(retry_count) = update.retry_count {
            webhook.retry_count = retry_count;
        }
        webhook.updated = Instant::now();
        Ok(())
    }

    pub fn delete_webhook(
        &mut self,
        channel_sid: &str,
        webhook_sid: &str,
    ) -> Result<(), WorldError> {
        self.chat
            .channels
            .require_mut("Channel", channel_sid)?
            .webhooks
            .remove(webhook_sid)
            .map(drop)
            .ok_or_else(|| WorldError::not_found("Webhook", webhook_sid))
    }

    /// A user of `service_sid` by US SID or identity.
    pub fn find_user(&self, service_sid: &str, id: &str) -> Result<&User, WorldError> {
        self.service(service_sid)?;
        let users = &self.chat.users;
        users
            .get(id)
            .filter(|user| user.service_sid == service_sid)
            .or_else(|| users.find(|u| u.service_sid == service_sid && u.identity == id))
            .ok_or_else(|| WorldError::not_found("User", id))
    }

    pub fn create_user(&mut self, service_sid: &str, new: NewUser) -> Result<String, WorldError> {
        if self.find_user(service_sid, &new.identity).is_ok() {
            return Err(WorldError::conflict(
                50201,
                format!(
                    "User with provided identity already exists: {}",
                    new.identity
                ),
            ));
        }
        self.service(service_sid)?;
        let sid = self.sid(Prefix::User);
        let now = Instant::now();
        self.chat.users.insert(User {
            sid: sid.clone(),
            service_sid: service_sid.to_owned(),
            identity: new.identity,
            friendly_name: new.friendly_name,
            attributes: new.attributes.unwrap_or_else(|| "{}".into()),
            role_sid: new
                .role_sid
                .unwrap_or_else(|| self.bootstrap.service_user_role_sid.clone()),
            created: now,
            updated: now,
        });
        Ok(sid)
    }

    /// Finds the user with this identity, or makes it; a given friendly
    /// name replaces the stored one (Flex does this on every channel create).
    pub fn upsert_user(
        &mut self,
        service_sid: &str,
        identity: &str,
        friendly_name: Option<&str>,
    ) -> Result<String, WorldError> {
        if let Ok(user) = self.find_user(service_sid, identity) {
            let sid = user.sid.clone();
            if let (Some(name), Some(user)) = (friendly_name, self.chat.users.get_mut(&sid))
                && user.friendly_name.as_deref() != Some(name)
            {
                user.friendly_name = Some(name.to_owned());
                user.updated = Instant::now();
            }
            return Ok(sid);
        }
        self.create_user(
            service_sid,
            NewUser {
                identity: identity.to_owned(),
                role_sid: None,
                attributes: None,
                friendly_name: friendly_name.map(str::to_owned),
            },
        )
    }

    /// How many channels a user is a member of (`joined_channels_count`).
    pub fn joined_channels(&self, service_sid: &str, identity: &str) -> usize {
        self.chat
            .channels
            .iter()
            .filter(|c| c.service_sid == service_sid && c.member_by_identity(identity).is_some())
            .count()
    }

    fn emit_channel(&mut self, kind: &'static str, channel_sid: &str) {
        let data = self.chat.channels.get(channel_sid).map(|channel| {
            let render = self.event_render();
            channel.to_json(&render)
        });
        self.emit(kind, json!({ "channel": data }));
    }

    fn emit_member(&mut self, kind: &'static str, channel_sid: &str, member_sid: &str) {
        let data = self.chat.channels.get(channel_sid).and_then(|channel| {
            let render = self.event_render();
            channel
                .members
                .get(member_sid)
                .map(|member| member.to_json(channel, &render))
        });
        self.emit(kind, json!({ "channel_sid": channel_sid, "member": data }));
    }
}

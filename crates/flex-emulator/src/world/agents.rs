//! What an agent does in the Flex UI (the console or the control API), as
//! SDK actions: write in the task's chat channel or conversation, type, end
//! the chat. Accepting and rejecting reservations is `routing.rs`.
//!
//! Ending the chat: Programmable Chat marks the channel attributes `status:
//! "INACTIVE"` and the agent leaves (`onChannelUpdated`, `onMemberRemoved`);
//! Flex Conversations closes the interaction channel and with it the
//! conversation (`onConversationStateUpdated`, `Reason=EVENT`). Either way
//! the task and reservation go `wrapping`, then `completed` after the
//! wrap-up time.

use serde_json::{Value, json};

use super::World;
use super::actor::Actor;
use super::channels::{ChannelChange, NewMessage};
use super::conversations::changes::NewConversationMessage;
use super::conversations::state::{ConversationState, StateReason};
use super::error::WorldError;
use super::interactions::ChannelStatus;
use super::taskrouter::{ChannelRef, EndedBy, Task, TaskStatus};
use super::uploads::NewMedia;

impl World {
    /// The task, if its live reservation belongs to this agent.
    pub(crate) fn agent_task(&self, worker_sid: &str, task_sid: &str) -> Result<&Task, WorldError> {
        let task = self.taskrouter.tasks.require("Task", task_sid)?;
        let mine = self
            .taskrouter
            .reservations
            .iter()
            .any(|r| r.task_sid == task_sid && r.worker_sid == worker_sid);
        if mine {
            Ok(task)
        } else {
            Err(WorldError::not_found("Task", task_sid))
        }
    }

    fn assigned_chat(&self, worker_sid: &str, task_sid: &str) -> Result<ChannelRef, WorldError> {
        let task = self.agent_task(worker_sid, task_sid)?;
        if task.status != TaskStatus::Assigned {
            return Err(WorldError::state(
                "task",
                &format!("task {task_sid} is {}, not assigned", task.status.as_str()),
            ));
        }
        task.target.clone().ok_or_else(|| {
            WorldError::state(
                "task",
                &format!(
                    "task {task_sid} has no chat channel or conversation (attributes channelSid, conversationSid)"
                ),
            )
        })
    }

    /// The agent writes in the task's channel or conversation (an SDK
    /// message); returns where and the message SID.
    pub(crate) fn agent_send(
        &mut self,
        worker_sid: &str,
        task_sid: &str,
        body: Option<&str>,
        media: Option<NewMedia>,
    ) -> Result<(ChannelRef, String), WorldError> {
        let target = self.assigned_chat(worker_sid, task_sid)?;
        let identity = self.agent(worker_sid)?.identity.clone();
        let agent = Actor::agent(&identity);
        let media_sid = match media {
            Some(media) => {
                let service = self.bootstrap.chat_service_sid.clone();
                let media = NewMedia {
                    author: identity.clone(),
                    ..media
                };
                Some(self.upload_media(&service, media)?)
            }
            None => None,
        };
        let message_sid = match &target {
            ChannelRef::Chat { channel_sid, .. } => {
                let message = NewMessage {
                    from: Some(identity.clone()),
                    body: body.map(str::to_owned),
                    media_sid,
                    ..NewMessage::default()
                };
                self.post_message(channel_sid, message, &agent)?
            }
            ChannelRef::Conversation {
                conversation_sid, ..
            } => {
                let message = NewConversationMessage {
                    author: Some(identity.clone()),
                    body: body.map(str::to_owned),
                    media_sid,
                    ..NewConversationMessage::default()
                };
                self.post_conversation_message(conversation_sid, message, &agent)?
            }
        };
        Ok((target, message_sid))
    }

    /// The agent is typing (an SSE event only: Chat has no typing webhook).
    pub(crate) fn agent_typing(
        &mut self,
        worker_sid: &str,
        task_sid: &str,
    ) -> Result<(), WorldError> {
        let target = self.assigned_chat(worker_sid, task_sid)?;
        let channel_sid = target.channel_sid();
        let identity = self.agent(worker_sid)?.identity.clone();
        self.emit(
            "typing",
            json!({"task_sid": task_sid, "channel_sid": channel_sid, "identity": identity}),
        );
        Ok(())
    }

    /// The agent ends the chat. Chat: channel `INACTIVE`, the agent leaves.
    /// Conversations: the interaction channel closes and with it the
    /// conversation (`interactions/orchestration.rs`). The task wraps.
    pub(crate) fn end_chat(&mut self, worker_sid: &str, task_sid: &str) -> Result<(), WorldError> {
        let task = self.agent_task(worker_sid, task_sid)?;
        if task.status != TaskStatus::Assigned {
            return Err(WorldError::state(
                "task",
                &format!("task {task_sid} is {}, not assigned", task.status.as_str()),
            ));
        }
        let target = task.target.clone();
        let identity = self.agent(worker_sid)?.identity.clone();
        let agent = Actor::agent(&identity);
        self.mark_ended([&task_sid.to_owned()], EndedBy::Agent);
        if let Some(ChannelRef::Conversation {
            conversation_sid,
            interaction,
        }) = &target
        {
            self.end_conversation(conversation_sid, interaction.as_ref(), &agent)?;
        }
        if let Some(ChannelRef::Chat {
            service_sid,
            channel_sid,
        }) = target
            && let Some(channel) = self.chat.channels.get(&channel_sid)
        {
            let mut attributes = channel.attributes_object();
            attributes.insert("status".into(), json!("INACTIVE"));
            let update = ChannelChange {
                attributes: Some(Value::Object(attributes).to_string()),
                ..ChannelChange::default()
            };
            self.update_channel(&service_sid, &channel_sid, update, &agent)?;
            let is_member = self
                .chat
                .channels
                .get(&channel_sid)
                .is_some_and(|c| c.member_by_identity(&identity).is_some());
            if is_member {
                self.remove_member(&channel_sid, &identity, &agent)?;
            }
            self.end_executions(&channel_sid);
        }
        let still_assigned = self
            .taskrouter
            .tasks
            .get(task_sid)
            .is_some_and(|t| t.status == TaskStatus::Assigned);
        if still_assigned {
            self.wrap_task(task_sid)?;
            self.schedule_wrapup(task_sid);
        }
        Ok(())
    }

    /// The conversations half of ending a chat: the interaction channel
    /// closes (and the conversation with it), or, for a task made without an
    /// interaction, the conversation closes. Nothing when already closed.
    fn end_conversation(
        &mut self,
        conversation_sid: &str,
        interaction: Option<&(String, String)>,
        agent: &Actor,
    ) -> Result<(), WorldError> {
        if let Some((interaction_sid, channel_sid)) = interaction {
            let status = self
                .interactions
                .get(interaction_sid)
                .and_then(|i| i.channels.get(channel_sid))
                .map(|c| c.status);
            if status.is_some_and(|s| s != ChannelStatus::Closed) {
                return self.close_interaction_channel(
                    interaction_sid,
                    channel_sid,
                    ChannelStatus::Closed,
                    false,
                    agent,
                );
            }
        }
        let open = self
            .conversations
            .get(conversation_sid)
            .is_some_and(|c| c.state != ConversationState::Closed);
        if open {
            self.set_conversation_state(
                conversation_sid,
                ConversationState::Closed,
                StateReason::Event,
                agent,
            )?;
        }
        Ok(())
    }
}

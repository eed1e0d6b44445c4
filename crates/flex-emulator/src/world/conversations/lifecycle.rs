//! The conversation state machine: `active` ⇄ `inactive` → `closed`.
//!
//! - By the API: `State` on create (not `closed`: Twilio error 50384) or
//!   update (`Reason=API`; webhooks only with `X-Twilio-Webhook-Enabled`).
//! - By timers: `Timers.Inactive` / `Timers.Closed` elapsed since the last
//!   activity (`Reason=TIMER`, `Source=API`, always fired).
//! - By events (`Reason=EVENT`): a message or a new participant reactivates
//!   an inactive conversation; the agent ending the chat (`Source=SDK`) or
//!   the Interactions API closing the interaction channel (`Source=API`)
//!   closes it.
//! - `closed` is final: any later change is refused with 409, Twilio code
//!   50377. Closing a conversation also closes the Flex interaction
//!   channels bound to it (`interactions/orchestration.rs`), so its tasks
//!   wrap up.
//!
//! Every transition emits `conversation.updated` (SSE) and fires
//! `onConversationStateUpdated`.

use serde_json::json;

use super::events::state_event;
use super::model::Scope;
use super::state::{ConversationState, StateReason};
use crate::alarms::Alarm;
use crate::clock::Instant;
use crate::world::World;
use crate::world::actor::Actor;
use crate::world::error::WorldError;
use crate::world::taskrouter::{ChannelRef, EndedBy};

/// The refusal of any change to a closed conversation.
pub(crate) fn closed_error(conversation_sid: &str) -> WorldError {
    WorldError::conflict(
        50377,
        format!(
            "Conversation {conversation_sid} is closed: a closed conversation can't be updated"
        ),
    )
}

impl World {
    /// Moves a conversation to `to` (nothing when it is there already).
    pub(crate) fn set_conversation_state(
        &mut self,
        sid: &str,
        to: ConversationState,
        reason: StateReason,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let conversation = self.conversations.require_mut("Conversation", sid)?;
        let from = conversation.state;
        if from == to {
            return Ok(());
        }
        if from == ConversationState::Closed {
            return Err(closed_error(sid));
        }
        let now = Instant::now();
        conversation.state = to;
        conversation.updated = now;
        if to == ConversationState::Active {
            conversation.timers.restart(to, now);
        }
        let fired = state_event(conversation, from, reason, now);
        self.emit_conversation("conversation.updated", sid);
        self.fire_conversation(sid, fired, actor);
        self.arm_conversation_alarm(sid);
        if to == ConversationState::Closed {
            if reason == StateReason::Api {
                let tasks: Vec<String> = self
                    .taskrouter
                    .tasks
                    .iter()
                    .filter(|t| matches!(&t.target, Some(ChannelRef::Conversation { conversation_sid, .. }) if conversation_sid == sid))
                    .map(|t| t.sid.clone())
                    .collect();
                self.mark_ended(&tasks, EndedBy::Customer);
            }
            self.close_interactions_of(sid);
        }
        Ok(())
    }

    /// Activity at `at` (a message, a participant): an inactive conversation
    /// becomes active again, and the timers count from then.
    pub(crate) fn conversation_activity(
        &mut self,
        sid: &str,
        at: Instant,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let conversation = self.conversations.require_mut("Conversation", sid)?;
        match conversation.state {
            ConversationState::Closed => Err(closed_error(sid)),
            ConversationState::Inactive => self.set_conversation_state(
                sid,
                ConversationState::Active,
                StateReason::Event,
                actor,
            ),
            ConversationState::Active => {
                conversation.timers.restart(ConversationState::Active, at);
                self.arm_conversation_alarm(sid);
                Ok(())
            }
        }
    }

    /// Asks the alarm clock to ring when the next timer falls due.
    pub(crate) fn arm_conversation_alarm(&mut self, sid: &str) {
        let next = self
            .conversations
            .get(sid)
            .and_then(|c| c.timers.next(c.state));
        if let Some(at) = next {
            self.set_alarm(
                Alarm::Conversation {
                    sid: sid.to_owned(),
                },
                at,
            );
        }
    }

    /// The alarm rang: apply the timers that have elapsed (at most inactive,
    /// then closed), then re-arm for what is still pending.
    pub(crate) fn apply_due_timers(&mut self, sid: &str) {
        for _ in 0..2 {
            let due = self
                .conversations
                .get(sid)
                .and_then(|c| c.timers.due(c.state, Instant::now()));
            let Some(to) = due else { break };
            if let Err(error) =
                self.set_conversation_state(sid, to, StateReason::Timer, &Actor::service())
            {
                tracing::warn!(%error, sid, "a conversation timer could not apply");
                break;
            }
        }
        self.arm_conversation_alarm(sid);
    }

    /// Publishes a conversation on the SSE bus (default-service shape).
    pub(crate) fn emit_conversation(&mut self, kind: &'static str, sid: &str) {
        let data = self.conversations.get(sid).map(|conversation| {
            let render = self.event_render();
            conversation.to_json(Scope::Default, &render)
        });
        self.emit(kind, json!({ "conversation": data }));
    }
}

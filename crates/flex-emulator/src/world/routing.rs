//! TaskRouter's job, simplified to what a chat contact centre shows: a
//! pending task is reserved to the available agent with the lowest load
//! (ties → the first agent) whose load is below its capacity and who has not
//! rejected it; the reservation waits for accept or reject (control API,
//! console, or `ReservationStatus` over REST). Accept → the task is
//! `assigned` and the agent joins the channel or conversation (and the
//! interaction channel); reject → the task goes to the next eligible agent,
//! or waits. Ending the chat (`agents.rs`) wraps the task and reservation,
//! and after the wrap-up time (an alarm, `alarms.rs`) they are `completed`.
//! Capacity frees on completion or cancellation, and waiting tasks are then
//! reserved.
//! Reservations never time out in the emulator.

use serde_json::{Value, json};

use super::World;
use super::actor::Actor;
use super::channels::NewMember;
use super::conversations::changes::NewParticipant;
use super::conversations::state::ConversationState;
use super::error::WorldError;
use super::taskrouter::{
    ChannelRef, EndedBy, Reservation, ReservationStatus, Task, TaskStatus, Worker,
};
use crate::clock::Instant;
use crate::sid::Prefix;

/// A task to make. `None` picks the bootstrap workflow / task channel `default`.
#[derive(Debug, Clone)]
pub(crate) struct NewTask {
    /// JSON object text.
    pub attributes: String,
    pub workflow_sid: Option<String>,
    /// Task channel SID or unique name.
    pub task_channel: Option<String>,
    pub priority: i64,
    pub timeout: u64,
    pub routing_target: Option<String>,
}

impl World {
    pub(crate) fn create_task(&mut self, new: NewTask) -> String {
        let tr = &self.taskrouter;
        let workflow_sid = new
            .workflow_sid
            .filter(|sid| tr.workflows.contains(sid))
            .unwrap_or_else(|| self.bootstrap.workflow_sid.clone());
        let channel = new
            .task_channel
            .as_deref()
            .and_then(|name| tr.task_channel(name))
            .or_else(|| tr.task_channel("default"))
            .map(|c| (c.sid.clone(), c.unique_name.clone()))
            .unwrap_or_default();
        let target = self.target_of(&new.attributes);
        let sid = self.sid(Prefix::Task);
        let now = Instant::now();
        self.taskrouter.tasks.insert(Task {
            sid: sid.clone(),
            attributes: new.attributes,
            status: TaskStatus::Pending,
            priority: new.priority,
            timeout: new.timeout,
            reason: None,
            workflow_sid,
            queue_sid: self.bootstrap.task_queue_sid.clone(),
            task_channel_sid: channel.0,
            task_channel_name: channel.1,
            routing_target: new.routing_target,
            target,
            declined_by: Vec::new(),
            ended_by: None,
            created: now,
            updated: now,
            virtual_start: now,
        });
        self.emit_task("task.created", &sid);
        self.assign_pending();
        sid
    }

    /// The chat channel (`channelSid`) or conversation (`conversationSid`)
    /// that task attributes name, if it exists.
    fn target_of(&self, attributes: &str) -> Option<ChannelRef> {
        let attributes = serde_json::from_str::<Value>(attributes).ok()?;
        let text = |key: &str| attributes.get(key).and_then(Value::as_str);
        if let Some(channel) = text("channelSid").and_then(|sid| self.chat.channels.get(sid)) {
            return Some(ChannelRef::Chat {
                service_sid: channel.service_sid.clone(),
                channel_sid: channel.sid.clone(),
            });
        }
        let conversation = text("conversationSid").and_then(|sid| self.conversations.get(sid))?;
        let interaction = text("flexInteractionSid").zip(text("flexInteractionChannelSid"));
        Some(ChannelRef::Conversation {
            conversation_sid: conversation.sid.clone(),
            interaction: interaction.map(|(kd, uo)| (kd.to_owned(), uo.to_owned())),
        })
    }

    /// Reserves every pending task an agent can take, highest priority and
    /// oldest first.
    pub(crate) fn assign_pending(&mut self) {
        let mut pending: Vec<(i64, String)> = self
            .taskrouter
            .tasks
            .iter()
            .filter(|task| task.status == TaskStatus::Pending)
            .map(|task| (task.priority, task.sid.clone()))
            .collect();
        pending.sort_by_key(|(priority, _)| std::cmp::Reverse(*priority));
        for (_, task_sid) in pending {
            if let Some(worker_sid) = self.pick_worker(&task_sid) {
                self.reserve(&task_sid, &worker_sid);
            }
        }
    }

    fn pick_worker(&self, task_sid: &str) -> Option<String> {
        let tr = &self.taskrouter;
        let task = tr.tasks.get(task_sid)?;
        tr.workers
            .iter()
            .filter(|w| w.available && !task.declined_by.contains(&w.sid))
            .map(|w| (tr.load(&w.sid), w))
            .filter(|(load, w)| *load < w.capacity)
            .min_by_key(|(load, _)| *load)
            .map(|(_, w)| w.sid.clone())
    }

    fn reserve(&mut self, task_sid: &str, worker_sid: &str) {
        let Some(worker_name) = self
            .taskrouter
            .workers
            .get(worker_sid)
            .map(|w| w.name.clone())
        else {
            return;
        };
        let sid = self.sid(Prefix::Reservation);
        let now = Instant::now();
        self.taskrouter.reservations.insert(Reservation {
            sid: sid.clone(),
            task_sid: task_sid.to_owned(),
            worker_sid: worker_sid.to_owned(),
            worker_name,
            status: ReservationStatus::Pending,
            created: now,
            updated: now,
        });
        self.set_task_status(task_sid, TaskStatus::Reserved, None);
        self.emit_reservation("reservation.created", &sid);
        self.emit_agent(worker_sid);
    }

    fn reservation_of(&self, sid: &str, worker: Option<&str>) -> Result<&Reservation, WorldError> {
        self.taskrouter
            .reservations
            .get(sid)
            .filter(|r| worker.is_none_or(|w| r.worker_sid == w))
            .ok_or_else(|| WorldError::not_found("Reservation", sid))
    }

    fn expect_reservation(
        reservation: &Reservation,
        wanted: &[ReservationStatus],
    ) -> Result<(), WorldError> {
        if wanted.contains(&reservation.status) {
            return Ok(());
        }
        Err(WorldError::state(
            "ReservationStatus",
            &format!(
                "reservation {} is {}",
                reservation.sid,
                reservation.status.as_str()
            ),
        ))
    }

    /// A pending reservation (of `worker`, when given) is answered: it moves
    /// to `status`. Returns its task and worker SIDs.
    fn answer_reservation(
        &mut self,
        sid: &str,
        worker: Option<&str>,
        status: ReservationStatus,
    ) -> Result<(String, String), WorldError> {
        let reservation = self.reservation_of(sid, worker)?;
        Self::expect_reservation(reservation, &[ReservationStatus::Pending])?;
        let sids = (reservation.task_sid.clone(), reservation.worker_sid.clone());
        self.set_reservation_status(sid, status);
        Ok(sids)
    }

    /// Accept: the task is assigned and the agent joins its channel.
    pub(crate) fn accept_reservation(
        &mut self,
        sid: &str,
        worker: Option<&str>,
    ) -> Result<(), WorldError> {
        let (task_sid, worker_sid) =
            self.answer_reservation(sid, worker, ReservationStatus::Accepted)?;
        self.set_task_status(&task_sid, TaskStatus::Assigned, None);
        let identity = self.agent(&worker_sid)?.identity.clone();
        let agent = Actor::agent(&identity);
        match self.task_target(&task_sid) {
            Some(ChannelRef::Chat { channel_sid, .. }) => {
                let already_member = self
                    .chat
                    .channels
                    .get(&channel_sid)
                    .is_none_or(|c| c.member_by_identity(&identity).is_some());
                if !already_member {
                    self.add_member(&channel_sid, NewMember::identity(&identity), &agent)?;
                }
            }
            Some(ChannelRef::Conversation {
                conversation_sid,
                interaction,
            }) => {
                let joins = self.conversations.get(&conversation_sid).is_some_and(|c| {
                    c.state != ConversationState::Closed
                        && c.participant_by_identity(&identity).is_none()
                });
                if joins {
                    let new = NewParticipant {
                        identity: Some(identity.clone()),
                        ..NewParticipant::default()
                    };
                    self.add_participant(&conversation_sid, new, &agent)?;
                }
                if let Some((interaction_sid, channel_sid)) = interaction {
                    let routing = json!({
                        "task_sid": task_sid,
                        "worker_sid": worker_sid,
                        "reservation_sid": sid,
                    });
                    self.agent_joined_interaction(&interaction_sid, &channel_sid, routing)?;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Reject: the task goes back to the queue, never again to this agent.
    pub(crate) fn reject_reservation(
        &mut self,
        sid: &str,
        worker: Option<&str>,
    ) -> Result<(), WorldError> {
        let (task_sid, worker_sid) =
            self.answer_reservation(sid, worker, ReservationStatus::Rejected)?;
        if let Some(task) = self.taskrouter.tasks.get_mut(&task_sid) {
            task.declined_by.push(worker_sid.clone());
        }
        self.set_task_status(&task_sid, TaskStatus::Pending, None);
        self.emit_agent(&worker_sid);
        self.assign_pending();
        Ok(())
    }

    /// Records who ended the chat of `tasks` (the first to end it).
    pub(crate) fn mark_ended<'a>(
        &mut self,
        tasks: impl IntoIterator<Item = &'a String>,
        by: EndedBy,
    ) {
        for sid in tasks {
            if let Some(task) = self.taskrouter.tasks.get_mut(sid)
                && task.ended_by.is_none()
            {
                task.ended_by = Some(by);
            }
        }
    }

    /// `assigned` → `wrapping` (task and reservation).
    pub(crate) fn wrap_task(&mut self, task_sid: &str) -> Result<(), WorldError> {
        self.expect_task(task_sid, &[TaskStatus::Assigned], "wrapping")?;
        self.set_task_status(task_sid, TaskStatus::Wrapping, None);
        if let Some(r) = self
            .taskrouter
            .live_reservation(task_sid)
            .map(|r| r.sid.clone())
        {
            self.set_reservation_status(&r, ReservationStatus::Wrapping);
        }
        Ok(())
    }

    /// `assigned`/`wrapping` → `completed`; frees the agent's capacity.
    pub(crate) fn complete_task(&mut self, task_sid: &str, reason: &str) -> Result<(), WorldError> {
        self.expect_task(
            task_sid,
            &[TaskStatus::Assigned, TaskStatus::Wrapping],
            "completed",
        )?;
        self.finish(
            task_sid,
            TaskStatus::Completed,
            ReservationStatus::Completed,
            reason,
        );
        Ok(())
    }

    /// `pending`/`reserved` → `canceled`; a pending reservation is canceled.
    pub(crate) fn cancel_task(&mut self, task_sid: &str, reason: &str) -> Result<(), WorldError> {
        self.expect_task(
            task_sid,
            &[TaskStatus::Pending, TaskStatus::Reserved],
            "canceled",
        )?;
        self.finish(
            task_sid,
            TaskStatus::Canceled,
            ReservationStatus::Canceled,
            reason,
        );
        Ok(())
    }

    fn finish(
        &mut self,
        task_sid: &str,
        task: TaskStatus,
        reservation: ReservationStatus,
        reason: &str,
    ) {
        self.set_task_status(task_sid, task, Some(reason));
        if let Some(r) = self.taskrouter.live_reservation(task_sid).cloned() {
            self.set_reservation_status(&r.sid, reservation);
            self.emit_agent(&r.worker_sid);
        }
        self.assign_pending();
    }

    fn expect_task(&self, task_sid: &str, from: &[TaskStatus], to: &str) -> Result<(), WorldError> {
        let task = self.taskrouter.tasks.require("Task", task_sid)?;
        if from.contains(&task.status) {
            return Ok(());
        }
        Err(WorldError::state(
            "AssignmentStatus",
            &format!(
                "task {task_sid} is {} and cannot become {to}",
                task.status.as_str()
            ),
        ))
    }

    /// Replaces a task's attributes and/or priority (REST `UpdateTask`).
    pub(crate) fn update_task(
        &mut self,
        task_sid: &str,
        attributes: Option<String>,
        priority: Option<i64>,
    ) -> Result<(), WorldError> {
        let task = self.taskrouter.tasks.require_mut("Task", task_sid)?;
        if let Some(attributes) = attributes {
            task.attributes = attributes;
        }
        if let Some(priority) = priority {
            task.priority = priority;
        }
        task.updated = Instant::now();
        self.emit_task("task.updated", task_sid);
        Ok(())
    }

    /// Sets the agent's activity to Available or Offline.
    pub(crate) fn set_agent_available(
        &mut self,
        worker_sid: &str,
        available: bool,
    ) -> Result<(), WorldError> {
        let activity_sid = if available {
            &self.bootstrap.available_activity_sid
        } else {
            &self.bootstrap.offline_activity_sid
        };
        let activity = self
            .taskrouter
            .activities
            .require("Activity", activity_sid)
            .map(|a| (a.sid.clone(), a.available))?;
        let worker = self.taskrouter.workers.require_mut("Agent", worker_sid)?;
        if worker.activity_sid != activity.0 {
            worker.activity_sid = activity.0;
            worker.available = activity.1;
            worker.status_changed = Instant::now();
        }
        self.emit_agent(worker_sid);
        if available {
            self.assign_pending();
        }
        Ok(())
    }

    fn task_target(&self, task_sid: &str) -> Option<ChannelRef> {
        self.taskrouter
            .tasks
            .get(task_sid)
            .and_then(|t| t.target.clone())
    }

    fn set_task_status(&mut self, task_sid: &str, status: TaskStatus, reason: Option<&str>) {
        if let Some(task) = self.taskrouter.tasks.get_mut(task_sid) {
            task.status = status;
            task.updated = Instant::now();
            if let Some(reason) = reason {
                task.reason = Some(reason.to_owned());
            }
        }
        self.emit_task("task.updated", task_sid);
    }

    fn set_reservation_status(&mut self, sid: &str, status: ReservationStatus) {
        if let Some(reservation) = self.taskrouter.reservations.get_mut(sid) {
            reservation.status = status;
            reservation.updated = Instant::now();
        }
        self.emit_reservation("reservation.updated", sid);
    }

    /// `{sid, name, identity, available, activity, capacity, load}`.
    pub(crate) fn agent_json(&self, worker: &Worker) -> Value {
        let activity = self.taskrouter.activities.get(&worker.activity_sid);
        json!({
            "sid": worker.sid,
            "name": worker.name,
            "identity": worker.identity,
            "available": worker.available,
            "activity": activity.map(|a| a.friendly_name.as_str()),
            "capacity": worker.capacity,
            "load": self.taskrouter.load(&worker.sid),
        })
    }

    fn emit_agent(&mut self, worker_sid: &str) {
        let data = self
            .taskrouter
            .workers
            .get(worker_sid)
            .map(|w| self.agent_json(w));
        self.emit("agent.updated", json!({ "agent": data }));
    }

    fn emit_task(&mut self, kind: &'static str, task_sid: &str) {
        let render = self.event_render();
        let tr = &self.taskrouter;
        let data = tr
            .tasks
            .get(task_sid)
            .map(|task| tr.task_json(task, &render));
        self.emit(kind, json!({ "task": data }));
    }

    fn emit_reservation(&mut self, kind: &'static str, sid: &str) {
        let render = self.event_render();
        let tr = &self.taskrouter;
        let Some(reservation) = tr.reservations.get(sid) else {
            return;
        };
        let data = json!({
            "reservation": tr.reservation_json(reservation, &render),
            "task": tr.tasks.get(&reservation.task_sid).map(|t| tr.task_json(t, &render)),
            "agent": {"sid": reservation.worker_sid, "name": reservation.worker_name},
        });
        self.emit(kind, data);
    }
}

//! TaskRouter v1 handlers: the workspace (listed, by `FriendlyName` too, and
//! fetched), its workflows, workers and task channels, tasks (create, list
//! with filters, fetch, update) and reservations (list, fetch, update).
//! Routing itself is `world/routing.rs`.

use super::error::ApiError;
use super::page::{self, WIDE};
use super::{Call, Reply};
use crate::sid::Prefix;
use crate::world::World;
use crate::world::routing::NewTask;
use crate::world::taskrouter::{ReservationStatus, Task, TaskStatus};

/// 404 unless the path names the one workspace.
fn check_workspace(world: &World, call: &Call, param: &str) -> Result<(), ApiError> {
    if call.path_param(param) == world.taskrouter.workspace.sid {
        Ok(())
    } else {
        Err(ApiError::not_found(&call.path))
    }
}

pub(super) fn fetch_workspace(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "Sid")?;
    Ok(Reply::Ok(
        world.taskrouter.workspace_json(&call.render(world)),
    ))
}

/// The one workspace, unless `FriendlyName` names another.
pub(super) fn list_workspaces(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let name = call.params.get("FriendlyName");
    let tr = &world.taskrouter;
    let items = if name.is_none_or(|name| tr.workspace.friendly_name == name) {
        vec![tr.workspace_json(&call.render(world))]
    } else {
        Vec::new()
    };
    page::page(call, WIDE, "workspaces", items).map(Reply::Ok)
}

pub(super) fn list_task_channels(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let render = call.render(world);
    let tr = &world.taskrouter;
    let items = tr
        .task_channels
        .iter()
        .map(|c| tr.task_channel_json(c, &render))
        .collect();
    page::page(call, WIDE, "channels", items).map(Reply::Ok)
}

/// `{Sid}` is the TC SID or the unique name (the spec's `fetchUniqueName`
/// example).
pub(super) fn fetch_task_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let tr = &world.taskrouter;
    let channel = tr
        .task_channel(call.path_param("Sid"))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(Reply::Ok(
        tr.task_channel_json(channel, &call.render(world)),
    ))
}

pub(super) fn list_workflows(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let name = call.params.get("FriendlyName");
    let render = call.render(world);
    let tr = &world.taskrouter;
    let items = tr
        .workflows
        .iter()
        .filter(|w| name.is_none_or(|name| w.friendly_name == name))
        .map(|w| tr.workflow_json(w, &render))
        .collect();
    page::page(call, WIDE, "workflows", items).map(Reply::Ok)
}

pub(super) fn list_workers(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let params = &call.params;
    let available = params.bool("Available")?;
    let activity_name = params.get("ActivityName");
    let activity_sid = params.get("ActivitySid");
    let name = params.get("FriendlyName");
    let render = call.render(world);
    let tr = &world.taskrouter;
    let items = tr
        .workers
        .iter()
        .filter(|w| available.is_none_or(|a| w.available == a))
        .filter(|w| activity_sid.is_none_or(|sid| w.activity_sid == sid))
        .filter(|w| {
            activity_name.is_none_or(|wanted| {
                tr.activities
                    .get(&w.activity_sid)
                    .is_some_and(|a| a.friendly_name == wanted)
            })
        })
        .filter(|w| name.is_none_or(|name| w.name == name))
        .map(|w| tr.worker_json(w, &render))
        .collect();
    page::page(call, WIDE, "workers", items).map(Reply::Ok)
}

pub(super) fn create_task(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let params = &call.params;
    let attributes = params.json_object("Attributes")?.unwrap_or_default();
    let workflow_sid = params.sid("WorkflowSid", Prefix::Workflow)?;
    if workflow_sid
        .as_ref()
        .is_some_and(|sid| !world.taskrouter.workflows.contains(sid))
    {
        return Err(ApiError::invalid_param(
            "WorkflowSid",
            "no Workflow has this SID",
        ));
    }
    let task_channel = params.text("TaskChannel");
    if task_channel
        .as_ref()
        .is_some_and(|c| world.taskrouter.task_channel(c).is_none())
    {
        return Err(ApiError::invalid_param(
            "TaskChannel",
            "no Task Channel has this SID or unique name",
        ));
    }
    let timeout: u64 = params.number("Timeout")?.unwrap_or(86_400);
    if !(1..=2_592_000).contains(&timeout) {
        return Err(ApiError::invalid_param(
            "Timeout",
            "must be between 1 and 2592000 seconds",
        ));
    }
    let sid = world.create_task(NewTask {
        attributes: serde_json::Value::Object(attributes).to_string(),
        workflow_sid,
        task_channel,
        priority: params.number("Priority")?.unwrap_or(0),
        timeout,
        routing_target: params.text("RoutingTarget"),
    });
    task_reply(world, call, &sid).map(Reply::Created)
}

fn task_reply(world: &World, call: &Call, sid: &str) -> Result<serde_json::Value, ApiError> {
    let tr = &world.taskrouter;
    let task = tr
        .tasks
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(tr.task_json(task, &call.render(world)))
}

/// `AssignmentStatus` filters: repeated, or comma-separated in one value.
fn status_filter(call: &Call) -> Result<Vec<TaskStatus>, ApiError> {
    call.params
        .all("AssignmentStatus")
        .iter()
        .flat_map(|value| value.split(','))
        .map(|name| {
            TaskStatus::parse(name.trim()).ok_or_else(|| {
                ApiError::invalid_param(
                    "AssignmentStatus",
                    format!("must be one of {}", TaskStatus::NAMES.join(", ")),
                )
            })
        })
        .collect()
}

/// `Ordering`: `DateCreated` or `Priority`, each `:asc` or `:desc`, comma-separated.
fn ordering(call: &Call) -> Result<Vec<(String, bool)>, ApiError> {
    let Some(value) = call.params.get("Ordering") else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(|key| match key.trim().split_once(':') {
            Some((field @ ("DateCreated" | "Priority"), direction @ ("asc" | "desc"))) => {
                Ok((field.to_owned(), direction == "desc"))
            }
            _ => Err(ApiError::invalid_param(
                "Ordering",
                "must be like DateCreated:asc or Priority:desc",
            )),
        })
        .collect()
}

pub(super) fn list_tasks(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let params = &call.params;
    let statuses = status_filter(call)?;
    let ordering = ordering(call)?;
    let priority: Option<i64> = params.number("Priority")?;
    let tr = &world.taskrouter;
    let workflow_name = params.get("WorkflowName");
    let queue_name = params.get("TaskQueueName");
    let mut tasks: Vec<&Task> = tr
        .tasks
        .iter()
        .filter(|t| statuses.is_empty() || statuses.contains(&t.status))
        .filter(|t| priority.is_none_or(|p| t.priority == p))
        .filter(|t| {
            params
                .get("WorkflowSid")
                .is_none_or(|sid| t.workflow_sid == sid)
        })
        .filter(|t| {
            params
                .get("TaskQueueSid")
                .is_none_or(|sid| t.queue_sid == sid)
        })
        .filter(|t| {
            workflow_name.is_none_or(|name| {
                tr.workflows
                    .get(&t.workflow_sid)
                    .is_some_and(|w| w.friendly_name == name)
            })
        })
        .filter(|t| {
            queue_name.is_none_or(|name| {
                tr.queues
                    .get(&t.queue_sid)
                    .is_some_and(|q| q.friendly_name == name)
            })
        })
        .collect();
    for (field, descending) in ordering.iter().rev() {
        tasks.sort_by(|a, b| {
            let order = if field == "Priority" {
                a.priority.cmp(&b.priority)
            } else {
                a.created.cmp(&b.created)
            };
            if *descending { order.reverse() } else { order }
        });
    }
    let render = call.render(world);
    let items = tasks
        .into_iter()
        .map(|t| tr.task_json(t, &render))
        .collect();
    page::page(call, WIDE, "tasks", items).map(Reply::Ok)
}

pub(super) fn fetch_task(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    task_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn update_task(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let sid = call.path_param("Sid");
    task_reply(world, call, sid)?;
    let params = &call.params;
    let status = params.choice("AssignmentStatus", &TaskStatus::NAMES)?;
    let attributes = params.json_object("Attributes")?;
    let priority = params.number("Priority")?;
    let reason = params.text("Reason");
    let needs_reason = matches!(status.as_deref(), Some("canceled" | "completed"));
    if needs_reason && reason.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::missing_param("Reason"));
    }
    if attributes.is_some() || priority.is_some() {
        let attributes = attributes.map(|a| serde_json::Value::Object(a).to_string());
        world
            .update_task(sid, attributes, priority)
            .map_err(|e| call.fail(e))?;
    }
    let reason = reason.unwrap_or_default();
    let result = match status.as_deref() {
        None => Ok(()),
        Some("canceled") => world.cancel_task(sid, &reason),
        Some("completed") => world.complete_task(sid, &reason),
        Some("wrapping") => world.wrap_task(sid),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "AssignmentStatus",
                "a task can only be moved to canceled, wrapping or completed",
            ));
        }
    };
    result.map_err(|e| call.fail(e))?;
    task_reply(world, call, sid).map(Reply::Ok)
}

pub(super) fn list_reservations(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    let task_sid = call.path_param("TaskSid");
    task_reply(world, call, task_sid)?;
    let status = call
        .params
        .choice("ReservationStatus", &ReservationStatus::NAMES)?
        .and_then(|s| ReservationStatus::parse(&s));
    let worker = call.params.get("WorkerSid");
    let render = call.render(world);
    let tr = &world.taskrouter;
    let items = tr
        .reservations
        .iter()
        .filter(|r| r.task_sid == task_sid)
        .filter(|r| status.is_none_or(|s| r.status == s))
        .filter(|r| worker.is_none_or(|w| r.worker_sid == w))
        .map(|r| tr.reservation_json(r, &render))
        .collect();
    page::page(call, WIDE, "reservations", items).map(Reply::Ok)
}

fn reservation_reply(world: &World, call: &Call) -> Result<serde_json::Value, ApiError> {
    let tr = &world.taskrouter;
    let reservation = tr
        .reservations
        .get(call.path_param("Sid"))
        .filter(|r| r.task_sid == call.path_param("TaskSid"))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(tr.reservation_json(reservation, &call.render(world)))
}

pub(super) fn fetch_reservation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    reservation_reply(world, call).map(Reply::Ok)
}

pub(super) fn update_reservation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_workspace(world, call, "WorkspaceSid")?;
    reservation_reply(world, call)?;
    let (sid, task_sid) = (call.path_param("Sid"), call.path_param("TaskSid"));
    let status = call
        .params
        .choice("ReservationStatus", &ReservationStatus::NAMES)?;
    let result = match status.as_deref() {
        None => Ok(()),
        Some("accepted") => world.accept_reservation(sid, None),
        Some("rejected") => world.reject_reservation(sid, None),
        Some("wrapping") => world.wrap_task(task_sid),
        Some("completed") => world.complete_task(task_sid, "reservation completed"),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "ReservationStatus",
                "a reservation can only be moved to accepted, rejected, wrapping or completed",
            ));
        }
    };
    result.map_err(|e| call.fail(e))?;
    reservation_reply(world, call).map(Reply::Ok)
}

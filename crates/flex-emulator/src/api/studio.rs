//! Studio v2 handlers, read-only: the flows (listed and fetched) and the
//! executions a studio-type Flex Flow started ("Send to Flex"), listed and
//! fetched.

use super::error::ApiError;
use super::page::{self, WIDE};
use super::{Call, Reply};
use crate::world::World;
use crate::world::studio::FlowView;

pub(super) fn list_flows(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let render = call.render(world);
    let items = world
        .studio
        .flows
        .iter()
        .map(|flow| flow.to_json(FlowView::Summary, &render))
        .collect();
    page::page(call, WIDE, "flows", items).map(Reply::Ok)
}

pub(super) fn fetch_flow(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let flow = world
        .studio
        .flows
        .get(call.path_param("Sid"))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(Reply::Ok(flow.to_json(FlowView::Full, &call.render(world))))
}

fn check_flow(world: &World, call: &Call) -> Result<(), ApiError> {
    if world.studio.flows.contains(call.path_param("FlowSid")) {
        Ok(())
    } else {
        Err(ApiError::not_found(&call.path))
    }
}

pub(super) fn list_executions(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_flow(world, call)?;
    let flow_sid = call.path_param("FlowSid");
    let render = call.render(world);
    let items = world
        .studio
        .executions
        .iter()
        .filter(|e| e.flow_sid == flow_sid)
        .map(|e| e.to_json(&render))
        .collect();
    page::page(call, WIDE, "executions", items).map(Reply::Ok)
}

pub(super) fn fetch_execution(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    check_flow(world, call)?;
    let execution = world
        .studio
        .executions
        .get(call.path_param("Sid"))
        .filter(|e| e.flow_sid == call.path_param("FlowSid"))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(Reply::Ok(execution.to_json(&call.render(world))))
}

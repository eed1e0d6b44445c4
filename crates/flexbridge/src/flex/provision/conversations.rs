//! What the Conversations backend routes with, found — never created: a
//! Flex account has them from the start, and a bridge must not invent a
//! second workspace. Given SIDs are checked; missing ones are looked up by
//! the names a new Flex account has.
//!
//! - The "Flex Chat Service": given, checked by listing one of its
//!   conversations (`GET conversations /v1/Services/{IS}/Conversations`);
//!   else found by friendly name in `GET conversations /v1/Services`.
//! - The workspace "Flex Task Assignment": given, fetched
//!   (`GET taskrouter /v1/Workspaces/{WS}`); else
//!   `GET /v1/Workspaces?FriendlyName=…`.
//! - The workflow "Assign to Anyone" (or the given one):
//!   `GET /v1/Workspaces/{WS}/Workflows`.
//! - The task channel (`chat` unless configured):
//!   `GET /v1/Workspaces/{WS}/TaskChannels`. Where that list is not served
//!   (404 — the Flex emulator lacks it) the channel is reported unverified
//!   rather than failing: interactions name it by unique name, and Flex
//!   refuses an unknown one when routing.
//! - With Studio routing, the flow (given): checked through its executions
//!   (`GET studio /v2/Flows/{FW}/Executions`).
//!
//! Lists the Flex emulator does not serve (conversation services,
//! workspaces) make a missing SID an error that says which setting to
//! pass; `flexbridge dev` passes the emulator's.

use super::super::FlexError;
use super::super::client::{Product, TwilioClient};
use crate::config::RoutingKind;
use crate::core::ids::{
    ChatServiceSid, IdError, StudioFlowSid, TaskChannelName, WorkflowSid, WorkspaceSid,
};

/// Flex's names for what a new account has.
pub const SERVICE_NAME: &str = "Flex Chat Service";
pub const WORKSPACE_NAME: &str = "Flex Task Assignment";
pub const WORKFLOW_NAME: &str = "Assign to Anyone";

/// What to look for; `None` = find it by Flex's name.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub chat_service: Option<&'a ChatServiceSid>,
    pub workspace: Option<&'a WorkspaceSid>,
    pub workflow: Option<&'a WorkflowSid>,
    pub task_channel: &'a TaskChannelName,
    pub routing: RoutingKind,
    pub studio_flow: Option<&'a StudioFlowSid>,
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub sid: T,
    /// Its friendly name, when the API says it.
    pub name: Option<String>,
    /// It was configured (and checked), not looked up by name.
    pub given: bool,
}

/// Everything found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub chat_service: Located<ChatServiceSid>,
    pub workspace: Located<WorkspaceSid>,
    pub workflow: Located<WorkflowSid>,
    pub task_channel: TaskChannelName,
    /// The task channel's SID, or why it could not be checked.
    pub task_channel_check: Result<String, String>,
    pub routing: RoutingKind,
    pub studio_flow: Option<StudioFlowSid>,
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{what} was not found{hint}")]
    NotFound { what: String, hint: String },
    #[error("{what} is ambiguous: {count} match; pass its SID with {setting}")]
    Ambiguous {
        what: String,
        count: usize,
        setting: &'static str,
    },
    #[error("{what}")]
    Twilio {
        what: String,
        #[source]
        source: FlexError,
    },
}

#[derive(Debug, serde::Deserialize)]
struct Named {
    sid: String,
    friendly_name: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct TaskChannel {
    sid: String,
    unique_name: Option<String>,
}

fn twilio(what: &str) -> impl FnOnce(FlexError) -> ProvisionError + '_ {
    move |source| ProvisionError::Twilio {
        what: what.to_owned(),
        source,
    }
}

/// `raw` as a SID of type `T`, or an error naming `what`.
fn sid<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, IdError>,
    what: &str,
) -> Result<T, ProvisionError> {
    parse(raw).map_err(|e| ProvisionError::Twilio {
        what: format!("reading {what}"),
        source: FlexError::BadResponse(e.to_string()),
    })
}

/// The one item named `name`, or why not.
fn the_one_named(
    items: Vec<Named>,
    name: &str,
    what: &str,
    setting: &'static str,
) -> Result<Named, ProvisionError> {
    let mut matching: Vec<Named> = items
        .into_iter()
        .filter(|item| item.friendly_name.as_deref() == Some(name))
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(ProvisionError::NotFound {
            what: format!("{what} \"{name}\""),
            hint: format!("; pass its SID with {setting}"),
        }),
        count => Err(ProvisionError::Ambiguous {
            what: format!("{what} \"{name}\""),
            count,
            setting,
        }),
    }
}

/// Finds (and checks) what `wanted` describes.
pub async fn find(client: &TwilioClient, wanted: &Wanted<'_>) -> Result<Found, ProvisionError> {
    let chat_service = chat_service(client, wanted.chat_service).await?;
    let workspace = workspace(client, wanted.workspace).await?;
    let workflow = workflow(client, &workspace.sid, wanted.workflow).await?;
    let task_channel_check = task_channel(client, &workspace.sid, wanted.task_channel).await?;
    let studio_flow = match (wanted.routing, wanted.studio_flow) {
        (RoutingKind::Studio, Some(flow)) => Some(studio_flow(client, flow).await?),
        (RoutingKind::Studio, None) => {
            return Err(ProvisionError::NotFound {
                what: "the Studio flow for FLEX_ROUTING=studio".into(),
                hint: "; pass its SID with STUDIO_FLOW_SID (--studio-flow-sid)".into(),
            });
        }
        (RoutingKind::Interactions, _) => None,
    };
    Ok(Found {
        chat_service,
        workspace,
        workflow,
        task_channel: wanted.task_channel.clone(),
        task_channel_check,
        routing: wanted.routing,
        studio_flow,
    })
}

async fn chat_service(
    client: &TwilioClient,
    given: Option<&ChatServiceSid>,
) -> Result<Located<ChatServiceSid>, ProvisionError> {
    if let Some(given) = given {
        let path = format!("/v1/Services/{given}/Conversations");
        let checked = client
            .get::<serde_json::Value>(Product::Conversations, &path, &[("PageSize", "1")])
            .await;
        return match checked {
            Ok(_) => Ok(Located {
                sid: given.clone(),
                name: None,
                given: true,
            }),
            Err(error) if error.is_not_found() => Err(ProvisionError::NotFound {
                what: format!("the conversation service {given}"),
                hint: " (FLEX_CHAT_SERVICE)".into(),
            }),
            Err(error) => Err(twilio("checking the conversation service")(error)),
        };
    }
    let services: Vec<Named> = client
        .list(Product::Conversations, "/v1/Services", &[], "services", 20)
        .await
        .map_err(|error| {
            unlisted(
                error,
                "the conversation services",
                "FLEX_CHAT_SERVICE (--flex-chat-service)",
            )
        })?;
    let found = the_one_named(
        services,
        SERVICE_NAME,
        "the conversation service",
        "FLEX_CHAT_SERVICE (--flex-chat-service)",
    )?;
    Ok(Located {
        sid: sid(&found.sid, ChatServiceSid::parse, "the service SID")?,
        name: found.friendly_name,
        given: false,
    })
}

/// A list that failed: a 404 means it is not served here.
fn unlisted(error: FlexError, what: &str, setting: &str) -> ProvisionError {
    if error.is_not_found() {
        ProvisionError::NotFound {
            what: format!("a list of {what} (this API answers 404)"),
            hint: format!("; pass the SID with {setting}"),
        }
    } else {
        twilio(&format!("listing {what}"))(error)
    }
}

async fn workspace(
    client: &TwilioClient,
    given: Option<&WorkspaceSid>,
) -> Result<Located<WorkspaceSid>, ProvisionError> {
    const SETTING: &str = "TASKROUTER_WORKSPACE_SID (--workspace-sid)";
    if let Some(given) = given {
        let fetched = client
            .get::<Named>(Product::TaskRouter, &format!("/v1/Workspaces/{given}"), &[])
            .await;
        return match fetched {
            Ok(workspace) => Ok(Located {
                sid: given.clone(),
                name: workspace.friendly_name,
                given: true,
            }),
            Err(error) if error.is_not_found() => Err(ProvisionError::NotFound {
                what: format!("the workspace {given}"),
                hint: format!(" ({SETTING})"),
            }),
            Err(error) => Err(twilio("fetching the workspace")(error)),
        };
    }
    let workspaces: Vec<Named> = client
        .list(
            Product::TaskRouter,
            "/v1/Workspaces",
            &[("FriendlyName", WORKSPACE_NAME)],
            "workspaces",
            20,
        )
        .await
        .map_err(|error| unlisted(error, "the TaskRouter workspaces", SETTING))?;
    let found = the_one_named(workspaces, WORKSPACE_NAME, "the workspace", SETTING)?;
    Ok(Located {
        sid: sid(&found.sid, WorkspaceSid::parse, "the workspace SID")?,
        name: found.friendly_name,
        given: false,
    })
}

async fn workflow(
    client: &TwilioClient,
    workspace: &WorkspaceSid,
    given: Option<&WorkflowSid>,
) -> Result<Located<WorkflowSid>, ProvisionError> {
    const SETTING: &str = "TASKROUTER_WORKFLOW_SID (--workflow-sid)";
    let path = format!("/v1/Workspaces/{workspace}/Workflows");
    let query: &[(&str, &str)] = match given {
        Some(_) => &[],
        None => &[("FriendlyName", WORKFLOW_NAME)],
    };
    let workflows: Vec<Named> = client
        .list(Product::TaskRouter, &path, query, "workflows", 20)
        .await
        .map_err(twilio("listing the workspace's workflows"))?;
    let found = match given {
        Some(given) => workflows
            .into_iter()
            .find(|w| w.sid == given.as_str())
            .ok_or_else(|| ProvisionError::NotFound {
                what: format!("the workflow {given} in workspace {workspace}"),
                hint: format!(" ({SETTING})"),
            })?,
        None => the_one_named(workflows, WORKFLOW_NAME, "the workflow", SETTING)?,
    };
    Ok(Located {
        sid: sid(&found.sid, WorkflowSid::parse, "the workflow SID")?,
        name: found.friendly_name,
        given: given.is_some(),
    })
}

/// `Ok(Ok(sid))`: found; `Ok(Err(why))`: could not be checked.
async fn task_channel(
    client: &TwilioClient,
    workspace: &WorkspaceSid,
    name: &TaskChannelName,
) -> Result<Result<String, String>, ProvisionError> {
    let path = format!("/v1/Workspaces/{workspace}/TaskChannels");
    let listed = client
        .list::<TaskChannel>(Product::TaskRouter, &path, &[], "channels", 20)
        .await;
    match listed {
        Ok(channels) => channels
            .into_iter()
            .find(|c| c.unique_name.as_deref() == Some(name.as_str()))
            .map(|c| Ok(c.sid))
            .ok_or_else(|| ProvisionError::NotFound {
                what: format!("the task channel \"{name}\" in workspace {workspace}"),
                hint: " (FLEX_TASK_CHANNEL)".into(),
            }),
        Err(error) if error.is_not_found() => Ok(Err(
            "the task channel list answers 404 here; Flex checks the name when routing".into(),
        )),
        Err(error) => Err(twilio("listing the workspace's task channels")(error)),
    }
}

async fn studio_flow(
    client: &TwilioClient,
    flow: &StudioFlowSid,
) -> Result<StudioFlowSid, ProvisionError> {
    let path = format!("/v2/Flows/{flow}/Executions");
    match client
        .get::<serde_json::Value>(Product::Studio, &path, &[("PageSize", "1")])
        .await
    {
        Ok(_) => Ok(flow.clone()),
        Err(error) if error.is_not_found() => Err(ProvisionError::NotFound {
            what: format!("the Studio flow {flow}"),
            hint: " (STUDIO_FLOW_SID)".into(),
        }),
        Err(error) => Err(twilio("checking the Studio flow")(error)),
    }
}

impl Found {
    /// What `flexbridge provision` prints about what it found.
    pub fn report(&self) -> Vec<String> {
        fn line<T: std::fmt::Display>(what: &str, found: &Located<T>) -> String {
            let name = found
                .name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default();
            let how = if found.given {
                "configured, checked"
            } else {
                "found by name"
            };
            format!("{what} {}{name} ({how})", found.sid)
        }
        let mut lines = vec![
            line("Conversation service", &self.chat_service),
            line("Workspace", &self.workspace),
            line("Workflow", &self.workflow),
        ];
        lines.push(match &self.task_channel_check {
            Ok(sid) => format!("Task channel {sid} \"{}\"", self.task_channel),
            Err(why) => format!(
                "Task channel \"{}\" (not checked: {why})",
                self.task_channel
            ),
        });
        lines.push(match &self.studio_flow {
            Some(flow) => format!("Routing: studio, flow {flow}"),
            None => "Routing: interactions".to_owned(),
        });
        lines
    }

    /// The settings `flexbridge serve` needs, as environment lines.
    pub fn env_lines(&self) -> Vec<String> {
        let mut lines = vec![
            "FLEX_BACKEND=conversations".to_owned(),
            format!("FLEX_CHAT_SERVICE={}", self.chat_service.sid),
            format!("FLEX_ROUTING={}", self.routing.as_str()),
        ];
        match &self.studio_flow {
            Some(flow) => lines.push(format!("STUDIO_FLOW_SID={flow}")),
            None => lines.extend([
                format!("TASKROUTER_WORKSPACE_SID={}", self.workspace.sid),
                format!("TASKROUTER_WORKFLOW_SID={}", self.workflow.sid),
                format!("FLEX_TASK_CHANNEL={}", self.task_channel),
            ]),
        }
        lines
    }
}

//! What the Conversations backend routes with, found — never created: a
//! Flex account has them from the start, and a bridge must not invent a
//! second workspace. Given SIDs are checked (fetched); missing ones are
//! looked up by the names a new Flex account has.
//!
//! - The "Flex Chat Service": given, `GET conversations /v1/Services/{IS}`;
//!   else found by friendly name in `GET /v1/Services`.
//! - The workspace "Flex Task Assignment": given,
//!   `GET taskrouter /v1/Workspaces/{WS}`; else
//!   `GET /v1/Workspaces?FriendlyName=…`.
//! - The workflow "Assign to Anyone" (or the given one):
//!   `GET /v1/Workspaces/{WS}/Workflows`.
//! - The task channel (`chat` unless configured), by unique name in
//!   `GET /v1/Workspaces/{WS}/TaskChannels`.
//! - With Studio routing, the flow: given, `GET studio /v2/Flows/{FW}`;
//!   else "Webchat Flow" by friendly name in `GET /v2/Flows`.
//!
//! The Flex emulator serves all of these, so against it (`TWILIO_API_BASE`)
//! the account's credentials are enough. A list that answers 404 elsewhere
//! makes a missing SID an error that says which setting to pass.

use super::super::FlexError;
use super::super::client::{Product, TwilioClient};
use crate::core::ids::IdError;
use crate::flex::conversations::{Routing, RoutingKind};
use crate::flex::sid::{ChatServiceSid, StudioFlowSid, TaskChannelName, WorkflowSid, WorkspaceSid};

/// Flex's names for what a new account has.
pub const SERVICE_NAME: &str = "Flex Chat Service";
pub const WORKSPACE_NAME: &str = "Flex Task Assignment";
pub const WORKFLOW_NAME: &str = "Assign to Anyone";
pub const STUDIO_FLOW_NAME: &str = "Webchat Flow";

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
    /// The task channel's SID (TC…).
    pub task_channel_sid: String,
    pub routing: RoutingKind,
    /// With Studio routing: the flow.
    pub studio_flow: Option<Located<StudioFlowSid>>,
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
    let chat_service = locate(
        client,
        &SERVICES,
        wanted.chat_service,
        ChatServiceSid::parse,
    )
    .await?;
    let workspace = locate(client, &WORKSPACES, wanted.workspace, WorkspaceSid::parse).await?;
    let workflow = workflow(client, &workspace.sid, wanted.workflow).await?;
    let task_channel_sid = task_channel(client, &workspace.sid, wanted.task_channel).await?;
    let studio_flow = match wanted.routing {
        RoutingKind::Studio => Some(
            locate(
                client,
                &STUDIO_FLOWS,
                wanted.studio_flow,
                StudioFlowSid::parse,
            )
            .await?,
        ),
        RoutingKind::Interactions => None,
    };
    Ok(Found {
        chat_service,
        workspace,
        workflow,
        task_channel: wanted.task_channel.clone(),
        task_channel_sid,
        routing: wanted.routing,
        studio_flow,
    })
}

/// A kind of account resource fetched by SID or found by Flex's name.
struct Kind {
    product: Product,
    /// The list; one of them is at `{list}/{SID}`.
    list: &'static str,
    /// The list's array (`meta.key`).
    key: &'static str,
    /// Whether the list takes a `FriendlyName` filter (the spec's word).
    filters_by_name: bool,
    /// Flex's name for the one a new account has.
    flex_name: &'static str,
    what: &'static str,
    /// Where its SID is configured.
    setting: &'static str,
}

const SERVICES: Kind = Kind {
    product: Product::Conversations,
    list: "/v1/Services",
    key: "services",
    filters_by_name: false,
    flex_name: SERVICE_NAME,
    what: "the conversation service",
    setting: "FLEX_CHAT_SERVICE (--flex-chat-service)",
};

const WORKSPACES: Kind = Kind {
    product: Product::TaskRouter,
    list: "/v1/Workspaces",
    key: "workspaces",
    filters_by_name: true,
    flex_name: WORKSPACE_NAME,
    what: "the workspace",
    setting: "TASKROUTER_WORKSPACE_SID (--workspace-sid)",
};

const STUDIO_FLOWS: Kind = Kind {
    product: Product::Studio,
    list: "/v2/Flows",
    key: "flows",
    filters_by_name: false,
    flex_name: STUDIO_FLOW_NAME,
    what: "the Studio flow",
    setting: "STUDIO_FLOW_SID (--studio-flow-sid)",
};

/// The given one, fetched; else the one Flex's name names.
async fn locate<T: Clone + std::fmt::Display>(
    client: &TwilioClient,
    kind: &Kind,
    given: Option<&T>,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<Located<T>, ProvisionError> {
    if let Some(given) = given {
        let path = format!("{}/{given}", kind.list);
        return match client.get::<Named>(kind.product, &path, &[]).await {
            Ok(found) => Ok(Located {
                sid: given.clone(),
                name: found.friendly_name,
                given: true,
            }),
            Err(error) if error.is_not_found() => Err(ProvisionError::NotFound {
                what: format!("{} {given}", kind.what),
                hint: format!(" ({})", kind.setting),
            }),
            Err(error) => Err(twilio(&format!("fetching {}", kind.what))(error)),
        };
    }
    let query: &[(&str, &str)] = if kind.filters_by_name {
        &[("FriendlyName", kind.flex_name)]
    } else {
        &[]
    };
    let items: Vec<Named> = client
        .list(kind.product, kind.list, query, kind.key, 20)
        .await
        .map_err(|error| unlisted(error, kind))?;
    let found = the_one_named(items, kind.flex_name, kind.what, kind.setting)?;
    Ok(Located {
        sid: sid(&found.sid, parse, &format!("the SID of {}", kind.what))?,
        name: found.friendly_name,
        given: false,
    })
}

/// A list that failed: a 404 means it is not served here.
fn unlisted(error: FlexError, kind: &Kind) -> ProvisionError {
    if error.is_not_found() {
        ProvisionError::NotFound {
            what: format!("a list of {} (this API answers 404)", kind.key),
            hint: format!("; pass the SID with {}", kind.setting),
        }
    } else {
        twilio(&format!("listing {}", kind.key))(error)
    }
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

/// The SID of the task channel with this unique name.
async fn task_channel(
    client: &TwilioClient,
    workspace: &WorkspaceSid,
    name: &TaskChannelName,
) -> Result<String, ProvisionError> {
    let path = format!("/v1/Workspaces/{workspace}/TaskChannels");
    let channels: Vec<TaskChannel> = client
        .list(Product::TaskRouter, &path, &[], "channels", 20)
        .await
        .map_err(twilio("listing the workspace's task channels"))?;
    channels
        .into_iter()
        .find(|c| c.unique_name.as_deref() == Some(name.as_str()))
        .map(|c| c.sid)
        .ok_or_else(|| ProvisionError::NotFound {
            what: format!("the task channel \"{name}\" in workspace {workspace}"),
            hint: " (FLEX_TASK_CHANNEL)".into(),
        })
}

/// `found` as a report line: `{what} {SID} "{name}" (how)`.
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

/// Checks what `flexbridge serve` is configured with (every SID given,
/// nothing looked up): the report lines, or the first thing missing.
/// Interactions routing checks what [`find`] would, all given; Studio
/// routing needs no workspace, so only the service and the flow.
pub async fn check(
    client: &TwilioClient,
    chat_service: &ChatServiceSid,
    routing: &Routing,
) -> Result<Vec<String>, ProvisionError> {
    match routing {
        Routing::Interactions(routing) => {
            let wanted = Wanted {
                chat_service: Some(chat_service),
                workspace: Some(&routing.workspace),
                workflow: Some(&routing.workflow),
                task_channel: &routing.task_channel,
                routing: RoutingKind::Interactions,
                studio_flow: None,
            };
            Ok(find(client, &wanted).await?.report())
        }
        Routing::Studio { flow } => {
            let service = locate(client, &SERVICES, Some(chat_service), ChatServiceSid::parse);
            let flow = locate(client, &STUDIO_FLOWS, Some(flow), StudioFlowSid::parse);
            Ok(vec![
                line("Conversation service", &service.await?),
                line("Routing: studio, Studio flow", &flow.await?),
            ])
        }
    }
}

impl Found {
    /// What `flexbridge provision` prints about what it found.
    pub fn report(&self) -> Vec<String> {
        let mut lines = vec![
            line("Conversation service", &self.chat_service),
            line("Workspace", &self.workspace),
            line("Workflow", &self.workflow),
        ];
        lines.push(format!(
            "Task channel {} \"{}\"",
            self.task_channel_sid, self.task_channel
        ));
        lines.push(match &self.studio_flow {
            Some(flow) => line("Routing: studio, Studio flow", flow),
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
            Some(flow) => lines.push(format!("STUDIO_FLOW_SID={}", flow.sid)),
            None => lines.extend([
                format!("TASKROUTER_WORKSPACE_SID={}", self.workspace.sid),
                format!("TASKROUTER_WORKFLOW_SID={}", self.workflow.sid),
                format!("FLEX_TASK_CHANNEL={}", self.task_channel),
            ]),
        }
        lines
    }
}

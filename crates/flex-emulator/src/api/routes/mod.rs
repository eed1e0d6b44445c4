//! The route table: every Twilio operation the emulator serves. Paths,
//! `operationId`s and parameter names are copied from the OpenAPI specs in
//! `spec/twilio-oai/` (copies of Twilio's); `tests/spec_conformance.rs` checks every row
//! against them.
//!
//! - `mod.rs`            the Programmable Chat era: Flex Flows and channels, Chat v2, TaskRouter, Studio
//! - `conversations.rs`  Flex Conversations: Conversations v1 (services, both URL families), Flex Interactions

mod conversations;

use std::sync::LazyLock;

use super::page::{CHAT, PageLimits, WEBHOOKS, WIDE};
use super::{Api, Handler, Route, Verb, chat, flex, messaging, studio, taskrouter};

/// Every Twilio operation served, in this order: the Chat era, then
/// Conversations (services, the default service's conversations, then
/// service-scoped ones), then Interactions.
pub static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    [
        CHAT_ERA,
        &conversations::SERVICES,
        &conversations::DEFAULT_SERVICE,
        &conversations::SERVICE_SCOPED,
        &conversations::INTERACTIONS,
    ]
    .concat()
});

const fn route(
    api: Api,
    verb: Verb,
    path: &'static str,
    operation_id: &'static str,
    params: &'static [&'static str],
    handler: Handler,
) -> Route {
    Route {
        api,
        verb,
        path,
        operation_id,
        params,
        page: None,
        webhook_header: false,
        handler,
    }
}

const fn list(
    api: Api,
    path: &'static str,
    operation_id: &'static str,
    params: &'static [&'static str],
    limits: PageLimits,
    handler: Handler,
) -> Route {
    Route {
        page: Some(limits),
        ..route(api, Verb::Get, path, operation_id, params, handler)
    }
}

/// The route, also taking `X-Twilio-Webhook-Enabled`.
const fn hooked(route: Route) -> Route {
    Route {
        webhook_header: true,
        ..route
    }
}

const FLEX_FLOW_PARAMS: &[&str] = &[
    "FriendlyName",
    "ChatServiceSid",
    "ChannelType",
    "ContactIdentity",
    "Enabled",
    "IntegrationType",
    "Integration.FlowSid",
    "Integration.Url",
    "Integration.WorkspaceSid",
    "Integration.WorkflowSid",
    "Integration.Channel",
    "Integration.Timeout",
    "Integration.Priority",
    "Integration.CreationOnMessage",
    "LongLived",
    "JanitorEnabled",
    "Integration.RetryCount",
];

const WEBHOOK_CONFIG_PARAMS: &[&str] = &[
    "Configuration.Url",
    "Configuration.Method",
    "Configuration.Filters",
    "Configuration.Triggers",
    "Configuration.FlowSid",
    "Configuration.RetryCount",
];

const CHANNELS: &str = "/v2/Services/{ServiceSid}/Channels";
const CHANNEL: &str = "/v2/Services/{ServiceSid}/Channels/{Sid}";
const WEBHOOKS_PATH: &str = "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Webhooks";
const WEBHOOK: &str = "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Webhooks/{Sid}";
const MESSAGES: &str = "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages";
const MEMBERS: &str = "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Members";
const TASKS: &str = "/v1/Workspaces/{WorkspaceSid}/Tasks";
const TASK: &str = "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}";
const RESERVATIONS: &str = "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations";
const RESERVATION: &str = "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}";

use Api::{Chat, Flex, Studio, TaskRouter};
use Verb::{Delete, Get, Post};

/// The routes of the Programmable Chat era.
const CHAT_ERA: &[Route] = &[
    // Flex v1
    route(
        Flex,
        Post,
        "/v1/FlexFlows",
        "CreateFlexFlow",
        FLEX_FLOW_PARAMS,
        flex::create_flow,
    ),
    list(
        Flex,
        "/v1/FlexFlows",
        "ListFlexFlow",
        &["FriendlyName"],
        WIDE,
        flex::list_flows,
    ),
    route(
        Flex,
        Get,
        "/v1/FlexFlows/{Sid}",
        "FetchFlexFlow",
        &[],
        flex::fetch_flow,
    ),
    route(
        Flex,
        Post,
        "/v1/FlexFlows/{Sid}",
        "UpdateFlexFlow",
        FLEX_FLOW_PARAMS,
        flex::update_flow,
    ),
    route(
        Flex,
        Delete,
        "/v1/FlexFlows/{Sid}",
        "DeleteFlexFlow",
        &[],
        flex::delete_flow,
    ),
    route(
        Flex,
        Post,
        "/v1/Channels",
        "CreateChannel",
        &[
            "FlexFlowSid",
            "Identity",
            "ChatUserFriendlyName",
            "ChatFriendlyName",
            "Target",
            "ChatUniqueName",
            "PreEngagementData",
            "TaskSid",
            "TaskAttributes",
            "LongLived",
        ],
        flex::create_channel,
    ),
    list(
        Flex,
        "/v1/Channels",
        "ListChannel",
        &[],
        WIDE,
        flex::list_channels,
    ),
    route(
        Flex,
        Get,
        "/v1/Channels/{Sid}",
        "FetchChannel",
        &[],
        flex::fetch_channel,
    ),
    route(
        Flex,
        Delete,
        "/v1/Channels/{Sid}",
        "DeleteChannel",
        &[],
        flex::delete_channel,
    ),
    // Chat v2
    route(
        Chat,
        Get,
        "/v2/Services/{Sid}",
        "FetchService",
        &[],
        chat::fetch_service,
    ),
    hooked(route(
        Chat,
        Post,
        CHANNELS,
        "CreateChannel",
        &[
            "FriendlyName",
            "UniqueName",
            "Attributes",
            "Type",
            "DateCreated",
            "DateUpdated",
            "CreatedBy",
        ],
        chat::create_channel,
    )),
    list(
        Chat,
        CHANNELS,
        "ListChannel",
        &["Type"],
        CHAT,
        chat::list_channels,
    ),
    route(Chat, Get, CHANNEL, "FetchChannel", &[], chat::fetch_channel),
    hooked(route(
        Chat,
        Post,
        CHANNEL,
        "UpdateChannel",
        &[
            "FriendlyName",
            "UniqueName",
            "Attributes",
            "DateCreated",
            "DateUpdated",
            "CreatedBy",
        ],
        chat::update_channel,
    )),
    hooked(route(
        Chat,
        Delete,
        CHANNEL,
        "DeleteChannel",
        &[],
        chat::delete_channel,
    )),
    route(
        Chat,
        Post,
        WEBHOOKS_PATH,
        "CreateChannelWebhook",
        &[
            "Type",
            "Configuration.Url",
            "Configuration.Method",
            "Configuration.Filters",
            "Configuration.Triggers",
            "Configuration.FlowSid",
            "Configuration.RetryCount",
        ],
        chat::create_webhook,
    ),
    list(
        Chat,
        WEBHOOKS_PATH,
        "ListChannelWebhook",
        &[],
        WEBHOOKS,
        chat::list_webhooks,
    ),
    route(
        Chat,
        Get,
        WEBHOOK,
        "FetchChannelWebhook",
        &[],
        chat::fetch_webhook,
    ),
    route(
        Chat,
        Post,
        WEBHOOK,
        "UpdateChannelWebhook",
        WEBHOOK_CONFIG_PARAMS,
        chat::update_webhook,
    ),
    route(
        Chat,
        Delete,
        WEBHOOK,
        "DeleteChannelWebhook",
        &[],
        chat::delete_webhook,
    ),
    hooked(route(
        Chat,
        Post,
        MESSAGES,
        "CreateMessage",
        &[
            "From",
            "Attributes",
            "DateCreated",
            "DateUpdated",
            "Body",
            "MediaSid",
        ],
        messaging::create_message,
    )),
    list(
        Chat,
        MESSAGES,
        "ListMessage",
        &["Order"],
        CHAT,
        messaging::list_messages,
    ),
    route(
        Chat,
        Get,
        "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages/{Sid}",
        "FetchMessage",
        &[],
        messaging::fetch_message,
    ),
    hooked(route(
        Chat,
        Post,
        MEMBERS,
        "CreateMember",
        &[
            "Identity",
            "RoleSid",
            "LastConsumedMessageIndex",
            "LastConsumptionTimestamp",
            "DateCreated",
            "DateUpdated",
            "Attributes",
        ],
        messaging::create_member,
    )),
    list(
        Chat,
        MEMBERS,
        "ListMember",
        &["Identity"],
        CHAT,
        messaging::list_members,
    ),
    hooked(route(
        Chat,
        Delete,
        "/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Members/{Sid}",
        "DeleteMember",
        &[],
        messaging::delete_member,
    )),
    hooked(route(
        Chat,
        Post,
        "/v2/Services/{ServiceSid}/Users",
        "CreateUser",
        &["Identity", "RoleSid", "Attributes", "FriendlyName"],
        messaging::create_user,
    )),
    route(
        Chat,
        Get,
        "/v2/Services/{ServiceSid}/Users/{Sid}",
        "FetchUser",
        &[],
        messaging::fetch_user,
    ),
    // TaskRouter v1
    list(
        TaskRouter,
        "/v1/Workspaces",
        "ListWorkspace",
        &["FriendlyName"],
        WIDE,
        taskrouter::list_workspaces,
    ),
    route(
        TaskRouter,
        Get,
        "/v1/Workspaces/{Sid}",
        "FetchWorkspace",
        &[],
        taskrouter::fetch_workspace,
    ),
    list(
        TaskRouter,
        "/v1/Workspaces/{WorkspaceSid}/TaskChannels",
        "ListTaskChannel",
        &[],
        WIDE,
        taskrouter::list_task_channels,
    ),
    route(
        TaskRouter,
        Get,
        "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}",
        "FetchTaskChannel",
        &[],
        taskrouter::fetch_task_channel,
    ),
    list(
        TaskRouter,
        "/v1/Workspaces/{WorkspaceSid}/Workflows",
        "ListWorkflow",
        &["FriendlyName"],
        WIDE,
        taskrouter::list_workflows,
    ),
    list(
        TaskRouter,
        "/v1/Workspaces/{WorkspaceSid}/Workers",
        "ListWorker",
        &["ActivityName", "ActivitySid", "Available", "FriendlyName"],
        WIDE,
        taskrouter::list_workers,
    ),
    route(
        TaskRouter,
        Post,
        TASKS,
        "CreateTask",
        &[
            "Timeout",
            "Priority",
            "TaskChannel",
            "WorkflowSid",
            "Attributes",
            "RoutingTarget",
        ],
        taskrouter::create_task,
    ),
    list(
        TaskRouter,
        TASKS,
        "ListTask",
        &[
            "Priority",
            "AssignmentStatus",
            "WorkflowSid",
            "WorkflowName",
            "TaskQueueSid",
            "TaskQueueName",
            "Ordering",
        ],
        WIDE,
        taskrouter::list_tasks,
    ),
    route(
        TaskRouter,
        Get,
        TASK,
        "FetchTask",
        &[],
        taskrouter::fetch_task,
    ),
    route(
        TaskRouter,
        Post,
        TASK,
        "UpdateTask",
        &["Attributes", "AssignmentStatus", "Reason", "Priority"],
        taskrouter::update_task,
    ),
    list(
        TaskRouter,
        RESERVATIONS,
        "ListTaskReservation",
        &["ReservationStatus", "WorkerSid"],
        WIDE,
        taskrouter::list_reservations,
    ),
    route(
        TaskRouter,
        Get,
        RESERVATION,
        "FetchTaskReservation",
        &[],
        taskrouter::fetch_reservation,
    ),
    route(
        TaskRouter,
        Post,
        RESERVATION,
        "UpdateTaskReservation",
        &["ReservationStatus"],
        taskrouter::update_reservation,
    ),
    // Studio v2 (read-only: the flows, and what "Send to Flex" started)
    list(
        Studio,
        "/v2/Flows",
        "ListFlow",
        &[],
        WIDE,
        studio::list_flows,
    ),
    route(
        Studio,
        Get,
        "/v2/Flows/{Sid}",
        "FetchFlow",
        &[],
        studio::fetch_flow,
    ),
    list(
        Studio,
        "/v2/Flows/{FlowSid}/Executions",
        "ListExecution",
        &[],
        WIDE,
        studio::list_executions,
    ),
    route(
        Studio,
        Get,
        "/v2/Flows/{FlowSid}/Executions/{Sid}",
        "FetchExecution",
        &[],
        studio::fetch_execution,
    ),
];

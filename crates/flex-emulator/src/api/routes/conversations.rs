//! The routes of the Flex Conversations backend: Conversations v1 services;
//! conversations in both URL families — the default service
//! (`/v1/Conversations/…`) and the service-scoped one
//! (`/v1/Services/{ChatServiceSid}/Conversations/…`), made from one list by
//! `conversation_routes!` so they cannot drift — and Flex v1 Interactions.

use super::{hooked, list, route};
use crate::api::page::{CHAT, WEBHOOKS, WIDE};
use crate::api::{Api, Route, Verb, conversations, interactions};

use Api::{Conversations, Flex};
use Verb::{Delete, Get, Post};

/// `CreateConversation` and `UpdateConversation` take the same parameters.
const CONVERSATION_PARAMS: &[&str] = &[
    "FriendlyName",
    "UniqueName",
    "DateCreated",
    "DateUpdated",
    "MessagingServiceSid",
    "Attributes",
    "State",
    "Timers.Inactive",
    "Timers.Closed",
    "Bindings.Email.Address",
    "Bindings.Email.Name",
];

const PARTICIPANT_PARAMS: &[&str] = &[
    "Identity",
    "MessagingBinding.Address",
    "MessagingBinding.ProxyAddress",
    "MessagingBinding.ProjectedAddress",
    "DateCreated",
    "DateUpdated",
    "Attributes",
    "RoleSid",
];

const MESSAGE_PARAMS: &[&str] = &[
    "Author",
    "Body",
    "DateCreated",
    "DateUpdated",
    "Attributes",
    "MediaSid",
];

const WEBHOOK_PARAMS: &[&str] = &[
    "Target",
    "Configuration.Url",
    "Configuration.Method",
    "Configuration.Filters",
    "Configuration.Triggers",
    "Configuration.FlowSid",
    "Configuration.ReplayAfter",
];

/// The conversation routes under `$base`, whose operation IDs carry `$svc`
/// (`CreateConversation` / `CreateServiceConversation`).
macro_rules! conversation_routes {
    ($base:literal, $svc:literal) => {
        [
            hooked(route(
                Conversations,
                Post,
                concat!($base, "/Conversations"),
                concat!("Create", $svc, "Conversation"),
                CONVERSATION_PARAMS,
                conversations::create_conversation,
            )),
            list(
                Conversations,
                concat!($base, "/Conversations"),
                concat!("List", $svc, "Conversation"),
                &["StartDate", "EndDate", "State"],
                CHAT,
                conversations::list_conversations,
            ),
            route(
                Conversations,
                Get,
                concat!($base, "/Conversations/{Sid}"),
                concat!("Fetch", $svc, "Conversation"),
                &[],
                conversations::fetch_conversation,
            ),
            hooked(route(
                Conversations,
                Post,
                concat!($base, "/Conversations/{Sid}"),
                concat!("Update", $svc, "Conversation"),
                CONVERSATION_PARAMS,
                conversations::update_conversation,
            )),
            hooked(route(
                Conversations,
                Delete,
                concat!($base, "/Conversations/{Sid}"),
                concat!("Delete", $svc, "Conversation"),
                &[],
                conversations::delete_conversation,
            )),
            hooked(route(
                Conversations,
                Post,
                concat!($base, "/Conversations/{ConversationSid}/Participants"),
                concat!("Create", $svc, "ConversationParticipant"),
                PARTICIPANT_PARAMS,
                conversations::create_participant,
            )),
            list(
                Conversations,
                concat!($base, "/Conversations/{ConversationSid}/Participants"),
                concat!("List", $svc, "ConversationParticipant"),
                &[],
                CHAT,
                conversations::list_participants,
            ),
            route(
                Conversations,
                Get,
                concat!($base, "/Conversations/{ConversationSid}/Participants/{Sid}"),
                concat!("Fetch", $svc, "ConversationParticipant"),
                &[],
                conversations::fetch_participant,
            ),
            hooked(route(
                Conversations,
                Delete,
                concat!($base, "/Conversations/{ConversationSid}/Participants/{Sid}"),
                concat!("Delete", $svc, "ConversationParticipant"),
                &[],
                conversations::delete_participant,
            )),
            hooked(route(
                Conversations,
                Post,
                concat!($base, "/Conversations/{ConversationSid}/Messages"),
                concat!("Create", $svc, "ConversationMessage"),
                MESSAGE_PARAMS,
                conversations::create_message,
            )),
            list(
                Conversations,
                concat!($base, "/Conversations/{ConversationSid}/Messages"),
                concat!("List", $svc, "ConversationMessage"),
                &["Order"],
                CHAT,
                conversations::list_messages,
            ),
            route(
                Conversations,
                Get,
                concat!($base, "/Conversations/{ConversationSid}/Messages/{Sid}"),
                concat!("Fetch", $svc, "ConversationMessage"),
                &[],
                conversations::fetch_message,
            ),
            route(
                Conversations,
                Post,
                concat!($base, "/Conversations/{ConversationSid}/Webhooks"),
                concat!("Create", $svc, "ConversationScopedWebhook"),
                WEBHOOK_PARAMS,
                conversations::create_webhook,
            ),
            list(
                Conversations,
                concat!($base, "/Conversations/{ConversationSid}/Webhooks"),
                concat!("List", $svc, "ConversationScopedWebhook"),
                &[],
                WEBHOOKS,
                conversations::list_webhooks,
            ),
            route(
                Conversations,
                Get,
                concat!($base, "/Conversations/{ConversationSid}/Webhooks/{Sid}"),
                concat!("Fetch", $svc, "ConversationScopedWebhook"),
                &[],
                conversations::fetch_webhook,
            ),
            route(
                Conversations,
                Delete,
                concat!($base, "/Conversations/{ConversationSid}/Webhooks/{Sid}"),
                concat!("Delete", $svc, "ConversationScopedWebhook"),
                &[],
                conversations::delete_webhook,
            ),
        ]
    };
}

/// Conversations v1 services: the one service, the Flex Chat Service.
pub(super) const SERVICES: [Route; 2] = [
    list(
        Conversations,
        "/v1/Services",
        "ListService",
        &[],
        CHAT,
        conversations::list_services,
    ),
    route(
        Conversations,
        Get,
        "/v1/Services/{Sid}",
        "FetchService",
        &[],
        conversations::fetch_service,
    ),
];

/// Conversations v1 on the default service (the Flex Chat Service).
pub(super) const DEFAULT_SERVICE: [Route; 16] = conversation_routes!("/v1", "");

/// Conversations v1 addressed through `/v1/Services/{ChatServiceSid}`.
pub(super) const SERVICE_SCOPED: [Route; 16] =
    conversation_routes!("/v1/Services/{ChatServiceSid}", "Service");

const INTERACTION: &str = "/v1/Interactions/{Sid}";
const CHANNELS: &str = "/v1/Interactions/{InteractionSid}/Channels";
const CHANNEL: &str = "/v1/Interactions/{InteractionSid}/Channels/{Sid}";
const PARTICIPANTS: &str = "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants";
const PARTICIPANT: &str =
    "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants/{Sid}";

/// Flex v1 Interactions (create answers 200, as the spec says).
pub(super) const INTERACTIONS: [Route; 9] = [
    route(
        Flex,
        Post,
        "/v1/Interactions",
        "CreateInteraction",
        &["Channel", "Routing", "InteractionContextSid", "WebhookTtid"],
        interactions::create_interaction,
    ),
    route(
        Flex,
        Get,
        INTERACTION,
        "FetchInteraction",
        &[],
        interactions::fetch_interaction,
    ),
    route(
        Flex,
        Post,
        INTERACTION,
        "UpdateInteraction",
        &["WebhookTtid"],
        interactions::update_interaction,
    ),
    list(
        Flex,
        CHANNELS,
        "ListInteractionChannel",
        &[],
        WIDE,
        interactions::list_channels,
    ),
    route(
        Flex,
        Get,
        CHANNEL,
        "FetchInteractionChannel",
        &[],
        interactions::fetch_channel,
    ),
    route(
        Flex,
        Post,
        PARTICIPANTS,
        "CreateInteractionChannelParticipant",
        &["Type", "MediaProperties", "RoutingProperties"],
        interactions::create_participant,
    ),
    list(
        Flex,
        PARTICIPANTS,
        "ListInteractionChannelParticipant",
        &[],
        WIDE,
        interactions::list_participants,
    ),
    route(
        Flex,
        Post,
        PARTICIPANT,
        "UpdateInteractionChannelParticipant",
        &["Status"],
        interactions::update_participant,
    ),
    route(
        Flex,
        Post,
        CHANNEL,
        "UpdateInteractionChannel",
        &["Status", "Routing"],
        interactions::update_channel,
    ),
];

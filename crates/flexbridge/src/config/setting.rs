//! The settings table: every setting once, with its environment variable
//! (also its name in messages), its dotted key in the TOML file, its flag
//! (none for secrets: a command line is visible to other users) and what
//! it is for. The flags of each command are made from it
//! (`crate::cli`), the environment layer reads it, the file's keys are
//! checked against it, and unit tests check `docs/architecture.md` §4.2
//! and `flexbridge.example.toml` against it. [`SERVE`], [`PROVISION`] and
//! [`DEV`] say which settings each command reads; its serde struct in
//! [`super::raw`] has exactly those keys (a unit test checks that too).

/// One setting: a handle on its entry in the table (small, so errors
/// that name it stay small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting(&'static Spec);

/// A setting's names in each layer, and its help.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The environment variable, also the setting's name in messages.
    pub env: &'static str,
    /// The dotted key in the TOML file.
    pub file: &'static str,
    /// The command-line flag (none for secrets).
    pub flag: Option<&'static str>,
    /// The flag's value in `--help` (`<URL>`).
    pub value_name: &'static str,
    /// What it is for, in `--help` (after the variable's name; the
    /// command's default follows).
    pub help: &'static str,
}

impl std::ops::Deref for Setting {
    type Target = Spec;

    fn deref(&self) -> &Spec {
        self.0
    }
}

impl Setting {
    /// Whether the value is a secret (kept out of flags and `Debug`).
    pub fn is_secret(&self) -> bool {
        self.flag.is_none()
    }
}

macro_rules! settings {
    ($($ident:ident = $env:literal, $file:literal, $flag:expr, $value_name:literal, $help:literal;)*) => {
        $(pub const $ident: Setting = Setting(&Spec {
            env: $env,
            file: $file,
            flag: $flag,
            value_name: $value_name,
            help: $help,
        });)*
        /// Every setting.
        pub const ALL: &[Setting] = &[$($ident),*];
    };
}

settings! {
    HOST = "HOST", "server.host", Some("--host"), "HOST",
        "the address to listen on";
    PORT = "PORT", "server.port", Some("--port"), "PORT",
        "the port to listen on; 0 picks a free one";
    PUBLIC_BASE_URL = "PUBLIC_BASE_URL", "server.public_base_url", Some("--public-base-url"), "URL",
        "the URL Twilio reaches this bridge at; `auto` uses the listening address (local testing only)";
    DATABASE_URL = "DATABASE_URL", "database.url", Some("--database-url"), "URL",
        "the bridge's database";
    SKIP_TWILIO_CHECK = "FLEXBRIDGE_SKIP_TWILIO_CHECK", "server.skip_twilio_check", Some("--skip-twilio-check"), "BOOL",
        "`true`: start even when Twilio refuses the credentials at start (the bridge is then not ready)";
    ACCOUNT_SID = "TWILIO_ACCOUNT_SID", "twilio.account_sid", Some("--twilio-account-sid"), "AC…",
        "the Twilio account (its auth token comes from TWILIO_AUTH_TOKEN only)";
    AUTH_TOKEN = "TWILIO_AUTH_TOKEN", "twilio.auth_token", None, "",
        "the account's auth token; Twilio signs webhooks with it";
    API_KEY = "TWILIO_API_KEY", "twilio.api_key", Some("--twilio-api-key"), "SK…",
        "an API key for REST calls (its secret: TWILIO_API_SECRET)";
    API_SECRET = "TWILIO_API_SECRET", "twilio.api_secret", None, "",
        "the API key's secret";
    API_BASE = "TWILIO_API_BASE", "twilio.api_base", Some("--twilio-api-base"), "URL",
        "one base URL replacing every Twilio host (an emulator)";
    BACKEND = "FLEX_BACKEND", "flex.backend", Some("--backend"), "BACKEND",
        "the Flex backend new conversations open with: `conversations` or `chat`";
    CHAT_SERVICE = "FLEX_CHAT_SERVICE", "flex.chat_service_sid", Some("--flex-chat-service"), "IS…",
        "the \"Flex Chat Service\" SID (both backends)";
    ROUTING = "FLEX_ROUTING", "flex.routing", Some("--routing"), "ROUTING",
        "(conversations) `interactions` or `studio`";
    WORKSPACE = "TASKROUTER_WORKSPACE_SID", "flex.workspace_sid", Some("--workspace-sid"), "WS…",
        "(conversations) the workspace \"Flex Task Assignment\"";
    WORKFLOW = "TASKROUTER_WORKFLOW_SID", "flex.workflow_sid", Some("--workflow-sid"), "WW…",
        "(conversations) the workflow, e.g. \"Assign to Anyone\"";
    TASK_CHANNEL = "FLEX_TASK_CHANNEL", "flex.task_channel", Some("--task-channel"), "NAME",
        "(conversations) the task channel";
    TIMER_INACTIVE = "CONVERSATIONS_TIMER_INACTIVE", "flex.timers_inactive", Some("--timers-inactive"), "DURATION",
        "(conversations) new conversations' `Timers.Inactive` (e.g. PT30M)";
    TIMER_CLOSED = "CONVERSATIONS_TIMER_CLOSED", "flex.timers_closed", Some("--timers-closed"), "DURATION",
        "(conversations) new conversations' `Timers.Closed` (e.g. P1D)";
    STUDIO_FLOW_SID = "STUDIO_FLOW_SID", "flex.studio_flow_sid", Some("--studio-flow-sid"), "FW…",
        "the Studio flow that sends chats to Flex (chat provisioning; conversations with \
         FLEX_ROUTING=studio, where `provision` finds \"Webchat Flow\" without it)";
    FLEX_FLOW_SID = "FLEX_FLOW_SID", "flex.flow_sid", Some("--flex-flow-sid"), "FO…",
        "(chat) the Flex Flow (see `flexbridge provision`)";
    FLOW_NAME = "FLEX_FLOW_NAME", "flex.flow_name", Some("--flow-name"), "NAME",
        "(chat) the Flex Flow's friendly name";
    REDIS_URL = "REDIS_URL", "redis.url", Some("--redis-url"), "URL",
        "Redis, for several bridges on one PostgreSQL database (without it a bridge holds its \
         database alone, and a second one refuses to start)";
    OUTBOX_CONCURRENCY = "FLEXBRIDGE_OUTBOX_CONCURRENCY", "outbox.concurrency", Some("--outbox-concurrency"), "N",
        "conversations delivered at once";
    OUTBOX_LEASE_MS = "FLEXBRIDGE_OUTBOX_LEASE_MS", "outbox.lease_ms", Some("--outbox-lease-ms"), "MS",
        "how long a bridge's claim on a conversation's deliveries lasts unless renewed: a stopped \
         bridge's conversations move to another bridge after this";
    RATE_BURST = "FLEXBRIDGE_RATE_BURST", "limits.messages_burst", Some("--rate-burst"), "N",
        "messages a customer may send at once";
    RATE_PER_SECOND = "FLEXBRIDGE_RATE_PER_SECOND", "limits.messages_per_second", Some("--rate-per-second"), "N",
        "sustained messages per second per customer";
    ALLOWED_ORIGINS = "ALLOWED_ORIGINS", "server.allowed_origins", Some("--allowed-origins"), "ORIGINS",
        "the sites allowed to embed the web chat (frame it, open its socket), comma-separated \
         origins like https://www.example.com; the bridge's own origin always is";
    WIDGET_TITLE = "FLEXBRIDGE_WIDGET_TITLE", "widget.title", Some("--widget-title"), "TEXT",
        "the web chat's title (header, launcher label); unset: the language's own";
    WIDGET_GREETING = "FLEXBRIDGE_WIDGET_GREETING", "widget.greeting", Some("--widget-greeting"), "TEXT",
        "the line above the pre-engagement form; unset: the language's own";
    WIDGET_COLOR = "FLEXBRIDGE_WIDGET_COLOR", "widget.color", Some("--widget-color"), "#RRGGBB",
        "the accent colour (buttons, the customer's bubbles, the launcher); unset: the built-in blue";
    WIDGET_COLOR_TEXT = "FLEXBRIDGE_WIDGET_COLOR_TEXT", "widget.color_text", Some("--widget-color-text"), "#RRGGBB",
        "the text colour on the accent colour";
    WIDGET_LOGO_URL = "FLEXBRIDGE_WIDGET_LOGO_URL", "widget.logo_url", Some("--widget-logo-url"), "URL",
        "an image shown in the header (http(s); its origin is added to the page's img-src)";
    WIDGET_POSITION = "FLEXBRIDGE_WIDGET_POSITION", "widget.position", Some("--widget-position"), "SIDE",
        "the embedded launcher's corner: `right` or `left` (bottom)";
    WIDGET_LANGUAGE = "FLEXBRIDGE_WIDGET_LANGUAGE", "widget.language", Some("--widget-language"), "LANG",
        "`auto` (the browser's language chooses) or one of `en`, `es`, `fr`, `de`";
    WIDGET_WAITING_TEXT = "FLEXBRIDGE_WIDGET_WAITING_TEXT", "widget.waiting_text", Some("--widget-waiting-text"), "TEXT",
        "shown until an agent joins; unset: the language's own";
    WIDGET_BUSY_TEXT = "FLEXBRIDGE_WIDGET_BUSY_TEXT", "widget.busy_text", Some("--widget-busy-text"), "TEXT",
        "shown instead once the customer has waited FLEXBRIDGE_WIDGET_BUSY_AFTER";
    WIDGET_BUSY_AFTER = "FLEXBRIDGE_WIDGET_BUSY_AFTER", "widget.busy_after_seconds", Some("--widget-busy-after"), "SECONDS",
        "seconds of waiting before the busy text; 0 never shows it";
    WIDGET_ENDED_TEXT = "FLEXBRIDGE_WIDGET_ENDED_TEXT", "widget.ended_text", Some("--widget-ended-text"), "TEXT",
        "the header line once the chat ended; unset: the language's own";
    WIDGET_THANK_YOU = "FLEXBRIDGE_WIDGET_THANK_YOU", "widget.thank_you", Some("--widget-thank-you"), "TEXT",
        "the line under the chat-ended notice; unset: the language's own";
    WIDGET_SOUND = "FLEXBRIDGE_WIDGET_SOUND", "widget.sound", Some("--widget-sound"), "BOOL",
        "a short sound for an agent message the customer is not looking at";
    WIDGET_FORM_EMAIL = "FLEXBRIDGE_WIDGET_FORM_EMAIL", "widget.form_email", Some("--widget-form-email"), "MODE",
        "the pre-engagement form's e-mail field: `off`, `optional` or `required`";
    WIDGET_FORM_QUESTION = "FLEXBRIDGE_WIDGET_FORM_QUESTION", "widget.form_question", Some("--widget-form-question"), "MODE",
        "the form's question field: `off`, `optional` or `required`";
    WIDGET_FORM_TOPIC = "FLEXBRIDGE_WIDGET_FORM_TOPIC", "widget.form_topic", Some("--widget-form-topic"), "MODE",
        "the form's topic list: `off`, `optional` or `required` (needs FLEXBRIDGE_WIDGET_FORM_TOPICS)";
    WIDGET_FORM_TOPICS = "FLEXBRIDGE_WIDGET_FORM_TOPICS", "widget.form_topics", Some("--widget-form-topics"), "LIST",
        "the topic list's choices, comma-separated";
    WIDGET_FORM_TOPIC_LABEL = "FLEXBRIDGE_WIDGET_FORM_TOPIC_LABEL", "widget.form_topic_label", Some("--widget-form-topic-label"), "TEXT",
        "the topic list's label; unset: the language's own";
    WIDGET_QUESTION_FIRST = "FLEXBRIDGE_WIDGET_QUESTION_FIRST", "widget.question_as_first_message", Some("--widget-question-first"), "BOOL",
        "send the form's question as the customer's first message";
    WIDGET_HOURS = "FLEXBRIDGE_WIDGET_HOURS", "widget.hours", Some("--widget-hours"), "SCHEDULE",
        "business hours, e.g. `mon-fri 09:00-17:00, sat 10:00-13:00`; unset: always open";
    WIDGET_TIME_ZONE = "FLEXBRIDGE_WIDGET_TIME_ZONE", "widget.time_zone", Some("--widget-time-zone"), "ZONE",
        "the business hours' time zone (IANA, e.g. Europe/Berlin)";
    WIDGET_CLOSED_TEXT = "FLEXBRIDGE_WIDGET_CLOSED_TEXT", "widget.closed_text", Some("--widget-closed-text"), "TEXT",
        "shown outside business hours; unset: the language's own";
    ATTACHMENT_TYPES = "FLEXBRIDGE_ATTACHMENT_TYPES", "widget.attachment_types", Some("--attachment-types"), "TYPES",
        "the file types customers may attach, comma-separated, of image/png, image/jpeg, \
         image/gif, image/webp, application/pdf, text/plain (the types whose bytes the bridge \
         checks)";
    ATTACHMENT_MAX_BYTES = "FLEXBRIDGE_ATTACHMENT_MAX_BYTES", "widget.attachment_max_bytes", Some("--attachment-max-bytes"), "BYTES",
        "the largest file a customer may attach; at most 16777216 (Flex's limit for web chat)";
    DEV_ALLOWED_ORIGINS = "FLEXBRIDGE_DEV_ALLOWED_ORIGINS", "dev.allowed_origins", Some("--allowed-origins"), "ORIGINS",
        "the sites allowed to embed the web chat, comma-separated origins";
    DEV_HOST = "FLEXBRIDGE_DEV_HOST", "dev.host", Some("--host"), "HOST",
        "the address both servers listen on";
    DEV_PORT = "FLEXBRIDGE_DEV_PORT", "dev.port", Some("--port"), "PORT",
        "the bridge's port; 0 picks a free one";
    DEV_EMULATOR_PORT = "FLEXBRIDGE_DEV_EMULATOR_PORT", "dev.emulator_port", Some("--emulator-port"), "PORT",
        "the emulator's port; 0 picks a free one";
    DEV_DATABASE_URL = "FLEXBRIDGE_DEV_DATABASE_URL", "dev.database_url", Some("--database-url"), "URL",
        "the bridge's database";
    DEV_SEED = "FLEXBRIDGE_DEV_SEED", "dev.seed", Some("--seed"), "N",
        "seed of the emulator's SIDs and credentials (same seed, same account; unset: a new \
         account each run, whose SIDs never repeat against the database)";
    DEV_AGENTS = "FLEXBRIDGE_DEV_AGENTS", "dev.agents", Some("--agents"), "N",
        "number of agents in the emulator";
    DEV_BACKEND = "FLEXBRIDGE_DEV_BACKEND", "dev.backend", Some("--backend"), "BACKEND",
        "the Flex backend new conversations open with: `conversations` or `chat`";
    DEV_ROUTING = "FLEXBRIDGE_DEV_ROUTING", "dev.routing", Some("--routing"), "ROUTING",
        "how the Conversations backend routes: `interactions` or `studio` (the emulator's \
         \"Webchat Flow\")";
}

/// What `flexbridge serve` (and `doctor`) reads, in `--help`'s order.
pub const SERVE: &[Setting] = &[
    ACCOUNT_SID,
    AUTH_TOKEN,
    API_KEY,
    API_SECRET,
    API_BASE,
    CHAT_SERVICE,
    BACKEND,
    ROUTING,
    WORKSPACE,
    WORKFLOW,
    TASK_CHANNEL,
    STUDIO_FLOW_SID,
    HOST,
    PORT,
    PUBLIC_BASE_URL,
    ALLOWED_ORIGINS,
    DATABASE_URL,
    REDIS_URL,
    SKIP_TWILIO_CHECK,
    FLEX_FLOW_SID,
    TIMER_INACTIVE,
    TIMER_CLOSED,
    OUTBOX_CONCURRENCY,
    OUTBOX_LEASE_MS,
    RATE_BURST,
    RATE_PER_SECOND,
    WIDGET_TITLE,
    WIDGET_GREETING,
    WIDGET_COLOR,
    WIDGET_COLOR_TEXT,
    WIDGET_LOGO_URL,
    WIDGET_POSITION,
    WIDGET_LANGUAGE,
    WIDGET_WAITING_TEXT,
    WIDGET_BUSY_TEXT,
    WIDGET_BUSY_AFTER,
    WIDGET_ENDED_TEXT,
    WIDGET_THANK_YOU,
    WIDGET_SOUND,
    WIDGET_FORM_EMAIL,
    WIDGET_FORM_QUESTION,
    WIDGET_FORM_TOPIC,
    WIDGET_FORM_TOPICS,
    WIDGET_FORM_TOPIC_LABEL,
    WIDGET_QUESTION_FIRST,
    WIDGET_HOURS,
    WIDGET_TIME_ZONE,
    WIDGET_CLOSED_TEXT,
    ATTACHMENT_TYPES,
    ATTACHMENT_MAX_BYTES,
];

/// What `flexbridge provision` reads.
pub const PROVISION: &[Setting] = &[
    ACCOUNT_SID,
    AUTH_TOKEN,
    API_KEY,
    API_SECRET,
    API_BASE,
    CHAT_SERVICE,
    BACKEND,
    ROUTING,
    WORKSPACE,
    WORKFLOW,
    TASK_CHANNEL,
    STUDIO_FLOW_SID,
    FLOW_NAME,
];

/// What `flexbridge dev` reads: its own names (`FLEXBRIDGE_DEV_*`,
/// `[dev]`), so that a `DATABASE_URL` or `PORT` meant for something else
/// does not change where the README's dev command runs; and the web
/// chat's `[widget]` section, shared with `serve` (its names are the
/// bridge's own, so nothing else sets them by accident).
pub const DEV: &[Setting] = &[
    DEV_HOST,
    DEV_PORT,
    DEV_EMULATOR_PORT,
    DEV_DATABASE_URL,
    DEV_SEED,
    DEV_AGENTS,
    DEV_BACKEND,
    DEV_ROUTING,
    DEV_ALLOWED_ORIGINS,
    WIDGET_TITLE,
    WIDGET_GREETING,
    WIDGET_COLOR,
    WIDGET_COLOR_TEXT,
    WIDGET_LOGO_URL,
    WIDGET_POSITION,
    WIDGET_LANGUAGE,
    WIDGET_WAITING_TEXT,
    WIDGET_BUSY_TEXT,
    WIDGET_BUSY_AFTER,
    WIDGET_ENDED_TEXT,
    WIDGET_THANK_YOU,
    WIDGET_SOUND,
    WIDGET_FORM_EMAIL,
    WIDGET_FORM_QUESTION,
    WIDGET_FORM_TOPIC,
    WIDGET_FORM_TOPICS,
    WIDGET_FORM_TOPIC_LABEL,
    WIDGET_QUESTION_FIRST,
    WIDGET_HOURS,
    WIDGET_TIME_ZONE,
    WIDGET_CLOSED_TEXT,
    ATTACHMENT_TYPES,
    ATTACHMENT_MAX_BYTES,
];

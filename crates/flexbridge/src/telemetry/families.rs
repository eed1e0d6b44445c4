//! Every metric family the bridge exports, named once, with its HELP text,
//! and registered at zero when the recorder is installed ([`register`]): a
//! fresh bridge's `/metrics` already lists every family and every label
//! value an alert may name, so `rate()` and `absent()` work from the first
//! scrape. `docs/architecture.md` (Operations) has the same table.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const MESSAGES_IN: &str = "flexbridge_messages_in_total";
pub const MESSAGES_OUT: &str = "flexbridge_messages_out_total";
pub const DELIVERIES: &str = "flexbridge_deliveries_total";
pub const RETRIES: &str = "flexbridge_outbox_retries_total";
pub const POISON_JOBS: &str = "flexbridge_outbox_poison_jobs_total";
pub const TWILIO_AUTH_FAILURES: &str = "flexbridge_twilio_auth_failures_total";
pub const WEBHOOKS: &str = "flexbridge_webhooks_total";
pub const WEBHOOKS_REJECTED: &str = "flexbridge_webhooks_rejected_total";
pub const SOCKET_ORIGIN_REFUSED: &str = "flexbridge_socket_origin_refused_total";
pub const SOCKETS_CONNECTED: &str = "flexbridge_sockets_connected";
pub const CUSTOMERS_ONLINE: &str = "flexbridge_customers_online";
pub const CONVERSATIONS_OPEN: &str = "flexbridge_conversations_open";
pub const OUTBOX_DEPTH: &str = "flexbridge_outbox_depth";
pub const DELIVERY_LATENCY: &str = "flexbridge_delivery_latency_seconds";
pub const AGENT_MESSAGE_LATENCY: &str = "flexbridge_agent_message_latency_seconds";
pub const STORE_COMMIT: &str = "flexbridge_store_commit_seconds";
pub const STORE_BATCH_WRITES: &str = "flexbridge_store_batch_writes";
pub const LEASES_HELD: &str = "flexbridge_outbox_leases_held";
pub const TAKEOVERS: &str = "flexbridge_outbox_takeovers_total";
pub const REDIS_PUBLISH_FAILURES: &str = "flexbridge_redis_publish_failures_total";

/// `flexbridge_deliveries_total`'s `outcome`s.
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "failed", "delayed"];
/// `flexbridge_outbox_retries_total`'s `status`es (`flex::FlexError::label`).
pub const RETRY_STATUSES: [&str; 9] = [
    "401",
    "403",
    "404",
    "429",
    "4xx",
    "5xx",
    "timeout",
    "unreachable",
    "other",
];
/// `flexbridge_outbox_poison_jobs_total`'s `kind`s (`core::work::JobKind`).
pub const JOB_KINDS: [&str; 4] = ["open", "send", "sync", "close"];
/// `flexbridge_webhooks_total`'s `result`s: what the core made of an
/// accepted webhook, `rejected` (see the next family) or `error`.
pub const WEBHOOK_RESULTS: [&str; 6] = [
    "applied",
    "duplicate",
    "ignored",
    "unknown_channel",
    "rejected",
    "error",
];
/// `flexbridge_webhooks_rejected_total`'s `reason`s.
pub const WEBHOOK_REJECTIONS: [&str; 3] = ["bad_signature", "not_a_form", "malformed"];

/// Buckets of the latency histograms, seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of the store's commit histogram, seconds.
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Describes every family and registers each of its series at zero.
pub fn register() {
    counters();
    gauges();
    histograms();
}

fn counters() {
    describe_counter!(
        MESSAGES_IN,
        "Messages accepted into the bridge, by who sent them (customer, agent)."
    );
    for from in ["customer", "agent"] {
        metrics::counter!(MESSAGES_IN, "from" => from).absolute(0);
    }
    describe_counter!(MESSAGES_OUT, "Customer messages delivered to Flex.");
    metrics::counter!(MESSAGES_OUT).absolute(0);
    describe_counter!(
        DELIVERIES,
        "Delivery notices sent to customers, by outcome: delivered (in Flex), failed \
         (given up, with a reason), delayed (Flex refuses the bridge's credentials)."
    );
    for outcome in DELIVERY_OUTCOMES {
        metrics::counter!(DELIVERIES, "outcome" => outcome).absolute(0);
    }
    describe_counter!(
        RETRIES,
        "Outbox steps to be retried, by what Twilio answered (status code, 4xx, 5xx, \
         timeout, unreachable, other)."
    );
    for status in RETRY_STATUSES {
        metrics::counter!(RETRIES, "status" => status).absolute(0);
    }
    describe_counter!(
        POISON_JOBS,
        "Outbox jobs the store refused for good, settled as failed, by kind."
    );
    for kind in JOB_KINDS {
        metrics::counter!(POISON_JOBS, "kind" => kind).absolute(0);
    }
    describe_counter!(
        TWILIO_AUTH_FAILURES,
        "Twilio answers of 401 or 403 to the outbox: the credentials are wrong (an alarm)."
    );
    metrics::counter!(TWILIO_AUTH_FAILURES).absolute(0);
    describe_counter!(
        WEBHOOKS,
        "Twilio webhooks received, by result (rejected ones by reason in \
         flexbridge_webhooks_rejected_total)."
    );
    for result in WEBHOOK_RESULTS {
        metrics::counter!(WEBHOOKS, "result" => result).absolute(0);
    }
    describe_counter!(
        WEBHOOKS_REJECTED,
        "Twilio webhooks refused, by reason (bad_signature, not_a_form, malformed)."
    );
    for reason in WEBHOOK_REJECTIONS {
        metrics::counter!(WEBHOOKS_REJECTED, "reason" => reason).absolute(0);
    }
    describe_counter!(
        SOCKET_ORIGIN_REFUSED,
        "Socket.IO connections refused for a page origin ALLOWED_ORIGINS does not list."
    );
    metrics::counter!(SOCKET_ORIGIN_REFUSED).absolute(0);
    describe_counter!(
        TAKEOVERS,
        "Outbox leases this bridge took over: from a bridge that stopped renewing them, or \
         from an earlier run of its own."
    );
    metrics::counter!(TAKEOVERS).absolute(0);
    describe_counter!(
        REDIS_PUBLISH_FAILURES,
        "Fan-out messages this bridge could not publish to Redis (other bridges' sockets \
         missed them until they reconnect); zero without REDIS_URL."
    );
    metrics::counter!(REDIS_PUBLISH_FAILURES).absolute(0);
}

fn gauges() {
    describe_gauge!(
        SOCKETS_CONNECTED,
        "Customer Socket.IO connections open now."
    );
    describe_gauge!(
        CUSTOMERS_ONLINE,
        "Registered customers with at least one connection open now."
    );
    describe_gauge!(
        CONVERSATIONS_OPEN,
        "Conversations live now (opening or open), counted in the store at each scrape."
    );
    describe_gauge!(
        OUTBOX_DEPTH,
        "Outbox jobs waiting (queued, not yet settled), counted in the store at each scrape."
    );
    describe_gauge!(
        LEASES_HELD,
        "Outbox leases this bridge holds: the conversations it is delivering now."
    );
    for gauge in [
        SOCKETS_CONNECTED,
        CUSTOMERS_ONLINE,
        CONVERSATIONS_OPEN,
        OUTBOX_DEPTH,
        LEASES_HELD,
    ] {
        metrics::gauge!(gauge).increment(0.0);
    }
}

fn histograms() {
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Customer → Flex: from a customer message's acceptance to its delivery in Flex."
    );
    describe_histogram!(
        AGENT_MESSAGE_LATENCY,
        Unit::Seconds,
        "Agent → customer: from an agent message's webhook to the customer's sockets being told."
    );
    describe_histogram!(
        STORE_COMMIT,
        Unit::Seconds,
        "One group commit of the store: begin, its writes, commit."
    );
    describe_histogram!(STORE_BATCH_WRITES, "Writes per group commit of the store.");
    for histogram in [
        DELIVERY_LATENCY,
        AGENT_MESSAGE_LATENCY,
        STORE_COMMIT,
        STORE_BATCH_WRITES,
    ] {
        // A handle registers the series; it renders with zero samples.
        let _ = metrics::histogram!(histogram);
    }
}

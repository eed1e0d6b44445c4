//! The bridge's core: the domain model, the conversation state machine,
//! and the ports the rest of the crate plugs into. It imports nothing else
//! of the crate; `store`, `flex`, `customer`, `outbox` and `config` depend
//! on it (the shape of mautrix bridgev2: a core, and connectors that only
//! translate).
//!
//! - [`ids`]: parse-only newtypes for the bridge's ids, customer input and
//!   opaque remote ids.
//! - [`model`]: customers, conversations and messages as records.
//! - [`attachment`]: files carried by messages, and the checks an upload
//!   passes.
//! - [`conversation`]: the `opening → open → closed` state machine.
//! - [`pre_engagement`]: the pre-engagement form (which fields, their
//!   checks) and what a customer told in it.
//! - [`backend`]: the Flex port (`FlexBackend`, `FlexEvent`, `FlexRef`,
//!   the retry disposition) and the set of backends.
//! - [`fanout`]: the customer port (`Fanout`, `Notice`).
//! - [`storage`]: the storage port (`Storage`) and what its writes answer.
//! - [`work`]: the outbox's jobs and wake-ups.
//! - [`bridge`]: the service the sides and the outbox call; it decides.
//! - [`rate_limit`]: the per-customer message rate limit.
//! - [`clock`]: injected time, and the protocol's timestamp format.

pub mod attachment;
pub mod backend;
pub mod bridge;
pub mod clock;
pub mod conversation;
pub mod fanout;
pub mod ids;
pub mod model;
pub mod pre_engagement;
pub mod rate_limit;
pub mod storage;
pub mod work;

pub use bridge::{Bridge, BridgeError, BridgeParts, EventOutcome, Session};

use std::sync::Mutex;

/// An error and its sources, `outer: inner: innermost`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A mutex's guard, also after a panic elsewhere poisoned it (the data
/// behind the crate's mutexes is consistent between statements).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_chain_reads_outer_to_inner() {
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&error), "outer: disk full");
    }
}

//! Agents as both backends see them: who counts as an agent (anyone in
//! the channel or conversation but the customer, a customer identity of
//! this bridge, or Flex's own `system`), and the name a customer sees for
//! one — the chat user's `friendly_name` (Flex sets it to the agent's full
//! name), looked up once per identity and remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::client::{Product, TwilioClient};
use super::form::header;
use crate::core::backend::FlexEvent;
use crate::core::lock;
use crate::flex::sid::{ChannelSid, FlexIdentity};

/// Whether `author` (of a message, or a joining participant) is an agent:
/// neither a customer of this bridge nor Flex's own `system`.
pub fn is_agent_identity(author: &str) -> bool {
    author != "system" && FlexIdentity::customer_of(author).is_none()
}

/// Whether `author` is an agent of the conversation whose customer is
/// `customer`.
pub fn is_agent(author: &str, customer: &FlexIdentity) -> bool {
    author != customer.as_str() && is_agent_identity(author)
}

/// A Chat member or Conversations participant, as listed.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Member {
    pub sid: String,
    pub identity: Option<String>,
}

/// The agents among `members` of `channel`, as the "joined" events their
/// webhooks would have been (`event_type`, keyed by `key(member SID)`).
pub fn joined(
    members: Vec<Member>,
    customer: &FlexIdentity,
    channel: &ChannelSid,
    event_type: &str,
    key: impl Fn(&str) -> String,
) -> Vec<FlexEvent> {
    members
        .into_iter()
        .filter_map(|member| {
            let identity = member.identity.filter(|i| is_agent(i, customer))?;
            Some(FlexEvent::AgentJoined {
                header: header(event_type, key(&member.sid), channel),
                agent: identity,
            })
        })
        .collect()
}

/// How many agent display names are remembered.
const MAX_AGENT_NAMES: usize = 10_000;

/// Agent identity → display name, shared by a backend's clones.
#[derive(Debug, Clone, Default)]
pub struct AgentNames(Arc<Mutex<HashMap<String, String>>>);

#[derive(Debug, serde::Deserialize)]
struct User {
    friendly_name: Option<String>,
}

impl AgentNames {
    /// The display name of `identity`: the `friendly_name` of the user at
    /// `users_path` + `/{identity}`, else the identity itself.
    pub async fn lookup(
        &self,
        client: &TwilioClient,
        product: Product,
        users_path: &str,
        identity: &str,
    ) -> String {
        if let Some(name) = lock(&self.0).get(identity) {
            return name.clone();
        }
        let encoded =
            percent_encoding::utf8_percent_encode(identity, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("{users_path}/{encoded}");
        let name = match client.get::<User>(product, &path, &[]).await {
            Ok(user) => user
                .friendly_name
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| identity.to_owned()),
            // No such user: the identity is the name (remembered too).
            Err(error) if error.is_not_found() => identity.to_owned(),
            Err(error) => {
                tracing::debug!(identity, %error, "no display name for an agent");
                return identity.to_owned();
            }
        };
        let mut names = lock(&self.0);
        if names.len() >= MAX_AGENT_NAMES {
            names.clear();
        }
        names.insert(identity.to_owned(), name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::CustomerId;

    #[test]
    fn anyone_but_a_customer_or_the_system_is_an_agent() {
        let ada = FlexIdentity::for_customer(&CustomerId::generate());
        let bob = FlexIdentity::for_customer(&CustomerId::generate());
        assert!(is_agent("alice", &ada));
        assert!(is_agent("carol_40example_2Ecom", &ada));
        assert!(!is_agent(ada.as_str(), &ada));
        assert!(!is_agent(bob.as_str(), &ada));
        assert!(!is_agent("system", &ada));
    }
}

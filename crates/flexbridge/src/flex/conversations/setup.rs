//! Opening a conversation: every step safe to repeat, and no orphan left
//! behind.
//!
//! 1. The conversation, by unique name (our conversation id): created, or,
//!    when an earlier attempt made it (409), fetched by that name.
//! 2. The customer as a participant (409 50433: already there).
//! 3. The bridge's scoped webhook (listed first).
//! 4. Routing: an interaction (a 400 naming `Channel` is checked: if the
//!    interaction it names routes this conversation, it is ours from an
//!    earlier attempt), or the Studio webhook (listed first).
//!
//! A permanent failure (4xx) of steps 2–4 deletes the conversation before
//! it is reported. If the delete itself fails for a passing reason, that
//! failure is reported instead, so the outbox retries the whole open (which
//! finds the conversation again and either completes or deletes it).

use serde_json::json;

use super::{ConversationsBackend, Created, InteractionRef, InteractionRouting, Routing};
use crate::core::backend::{Disposition, OpenRequest, Opened};
use crate::core::ids::RemoteChannel;
use crate::flex::client::Product;
use crate::flex::sid::{
    ChannelSid, FlexIdentity, InteractionChannelSid, InteractionSid, StudioFlowSid,
};
use crate::flex::{FlexError, parse_sid};

/// What routing made: the interaction, when the Interactions API routed.
struct Routed {
    interaction: Option<InteractionRef>,
}

/// `POST /v1/Interactions`'s answer (the fields the bridge reads).
#[derive(Debug, serde::Deserialize)]
struct Interaction {
    sid: String,
    channel: Option<serde_json::Value>,
}

/// An interaction channel as listed.
#[derive(Debug, serde::Deserialize)]
struct InteractionChannel {
    sid: String,
    status: Option<String>,
}

impl ConversationsBackend {
    pub(super) async fn open_conversation(
        &self,
        request: &OpenRequest<'_>,
    ) -> Result<Opened, FlexError> {
        let Some(routing) = &self.routing else {
            return Err(FlexError::NotConfigured(
                "the Conversations backend cannot open conversations without its routing \
                 settings (TASKROUTER_WORKSPACE_SID and TASKROUTER_WORKFLOW_SID, or \
                 FLEX_ROUTING=studio with STUDIO_FLOW_SID)"
                    .into(),
            ));
        };
        let conversation = self.create_or_find(request).await?;
        match self.attach(&conversation, routing, request).await {
            Ok(routed) => Ok(Opened {
                channel: RemoteChannel::from(&conversation),
                flex_ref: routed.interaction.as_ref().map(InteractionRef::to_flex_ref),
            }),
            Err(error) if error.disposition() == Disposition::Permanent => {
                tracing::warn!(%conversation, %error, "setting up the conversation failed; deleting it");
                self.discard(&conversation).await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Steps 2–4.
    async fn attach(
        &self,
        conversation: &ChannelSid,
        routing: &Routing,
        request: &OpenRequest<'_>,
    ) -> Result<Routed, FlexError> {
        self.add_customer(conversation, request).await?;
        self.ensure_webhook(conversation).await?;
        match routing {
            Routing::Interactions(routing) => {
                self.route_interaction(conversation, routing, request).await
            }
            Routing::Studio { flow } => {
                self.ensure_studio(conversation, flow).await?;
                Ok(Routed { interaction: None })
            }
        }
    }

    async fn create_or_find(&self, request: &OpenRequest<'_>) -> Result<ChannelSid, FlexError> {
        let unique_name = request.conversation.as_str();
        let friendly_name = format!("Chat with {}", request.customer_name);
        let mut attributes = json!({
            "name": request.customer_name,
            "flexbridge": {
                "conversationId": unique_name,
                "customerId": request.customer.as_str(),
            },
        });
        // As Flex's web chat: the form's answers in the conversation's
        // attributes, where a Studio flow finds them
        // (`trigger.conversation.ChannelAttributes.pre_engagement_data`).
        if !request.pre_engagement.is_empty()
            && let Some(object) = attributes.as_object_mut()
        {
            object.insert(
                "pre_engagement_data".into(),
                request.pre_engagement.flex_data(request.customer_name),
            );
        }
        let attributes = attributes.to_string();
        let mut form = vec![
            ("FriendlyName", friendly_name.as_str()),
            ("UniqueName", unique_name),
            ("Attributes", attributes.as_str()),
        ];
        if let Some(inactive) = &self.timers.inactive {
            form.push(("Timers.Inactive", inactive.as_str()));
        }
        if let Some(closed) = &self.timers.closed {
            form.push(("Timers.Closed", closed.as_str()));
        }
        let created = self
            .client
            .post_form::<Created>(Product::Conversations, &self.path(""), &form, false)
            .await;
        let created = match created {
            Ok(created) => created,
            // 50353: the unique name is taken — by an earlier attempt.
            Err(error @ FlexError::Api { status: 409, .. }) => {
                tracing::info!(conversation = unique_name, %error, "the conversation exists already; continuing with it");
                self.client
                    .get(
                        Product::Conversations,
                        &self.path(&format!("/{unique_name}")),
                        &[],
                    )
                    .await?
            }
            Err(error) => return Err(error),
        };
        parse_sid(&created.sid, ChannelSid::parse)
    }

    async fn add_customer(
        &self,
        conversation: &ChannelSid,
        request: &OpenRequest<'_>,
    ) -> Result<(), FlexError> {
        let added = self
            .client
            .post_form::<Created>(
                Product::Conversations,
                &self.conversation_path(conversation, "/Participants"),
                &[(
                    "Identity",
                    FlexIdentity::for_customer(request.customer).as_str(),
                )],
                false,
            )
            .await;
        match added {
            // 50433: the identity is a participant already.
            Err(error) if error.is_api(409, 50433) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Deletes a conversation whose setup failed (gone already is fine).
    async fn discard(&self, conversation: &ChannelSid) -> Result<(), FlexError> {
        match self
            .client
            .delete(
                Product::Conversations,
                &self.conversation_path(conversation, ""),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) if error.disposition() != Disposition::Permanent => Err(error),
            Err(error) => {
                tracing::error!(%conversation, %error, "a conversation whose setup failed could not be deleted");
                Ok(())
            }
        }
    }

    async fn route_interaction(
        &self,
        conversation: &ChannelSid,
        routing: &InteractionRouting,
        request: &OpenRequest<'_>,
    ) -> Result<Routed, FlexError> {
        let channel = json!({
            "type": "chat",
            "initiated_by": "customer",
            "properties": { "media_channel_sid": conversation.as_str() },
        })
        .to_string();
        let mut attributes = json!({
            "name": request.customer_name,
            "channelType": "custom",
            "customerId": request.customer.as_str(),
        });
        if !request.pre_engagement.is_empty()
            && let Some(object) = attributes.as_object_mut()
        {
            object.extend(
                request
                    .pre_engagement
                    .task_attributes(request.customer_name),
            );
        }
        let routing = json!({
            "properties": {
                "workspace_sid": routing.workspace.as_str(),
                "workflow_sid": routing.workflow.as_str(),
                "task_channel_unique_name": routing.task_channel.as_str(),
                "attributes": attributes,
            },
        })
        .to_string();
        let created = self
            .client
            .post_form::<Interaction>(
                Product::Flex,
                "/v1/Interactions",
                &[("Channel", &channel), ("Routing", &routing)],
                false,
            )
            .await;
        let created = match created {
            Ok(created) => created,
            Err(error @ FlexError::Api { status: 400, .. }) => {
                return self.already_routed(conversation, error).await;
            }
            Err(error) => return Err(error),
        };
        let interaction = parse_sid(&created.sid, InteractionSid::parse)?;
        let channel = match created
            .channel
            .as_ref()
            .and_then(|c| c.get("sid"))
            .and_then(serde_json::Value::as_str)
        {
            Some(sid) => parse_sid(sid, InteractionChannelSid::parse)?,
            None => self
                .live_channel(&interaction)
                .await?
                .ok_or_else(|| FlexError::BadResponse("an interaction without a channel".into()))?,
        };
        Ok(Routed {
            interaction: Some(InteractionRef {
                interaction,
                channel,
            }),
        })
    }

    /// Flex refused a second interaction for the conversation (400 naming
    /// `Channel` and the live interaction): if that interaction routes this
    /// very conversation and has a live channel, an earlier attempt made it
    /// and routing is done; otherwise `refusal` stands.
    async fn already_routed(
        &self,
        conversation: &ChannelSid,
        refusal: FlexError,
    ) -> Result<Routed, FlexError> {
        let FlexError::Api { message, .. } = &refusal else {
            return Err(refusal);
        };
        let Some(interaction) =
            sid_in(message, InteractionSid::PREFIX).and_then(|sid| InteractionSid::parse(sid).ok())
        else {
            return Err(refusal);
        };
        let found = self
            .client
            .get::<Interaction>(
                Product::Flex,
                &format!("/v1/Interactions/{interaction}"),
                &[],
            )
            .await;
        let found = match found {
            Ok(found) => found,
            // Not there after all: the refusal stands.
            Err(error) if error.disposition() == Disposition::Permanent => return Err(refusal),
            Err(error) => return Err(error),
        };
        let routes_this = found
            .channel
            .as_ref()
            .and_then(|c| c.pointer("/properties/media_channel_sid"))
            .and_then(serde_json::Value::as_str)
            == Some(conversation.as_str());
        if !routes_this {
            return Err(refusal);
        }
        let Some(channel) = self.live_channel(&interaction).await? else {
            return Err(refusal);
        };
        tracing::info!(%conversation, %interaction, "the conversation was routed by an earlier attempt");
        Ok(Routed {
            interaction: Some(InteractionRef {
                interaction,
                channel,
            }),
        })
    }

    /// The first channel of `interaction` that is not closed.
    async fn live_channel(
        &self,
        interaction: &InteractionSid,
    ) -> Result<Option<InteractionChannelSid>, FlexError> {
        let channels: Vec<InteractionChannel> = self
            .client
            .list(
                Product::Flex,
                &format!("/v1/Interactions/{interaction}/Channels"),
                &[],
                "channels",
                1,
            )
            .await?;
        channels
            .into_iter()
            .find(|c| !matches!(c.status.as_deref(), Some("closed" | "failed")))
            .map(|c| parse_sid(&c.sid, InteractionChannelSid::parse))
            .transpose()
    }

    /// The scoped `Target=studio` webhook to `flow`, unless it exists.
    async fn ensure_studio(
        &self,
        conversation: &ChannelSid,
        flow: &StudioFlowSid,
    ) -> Result<(), FlexError> {
        let present = self.webhooks(conversation).await?.into_iter().any(|w| {
            w.target.as_deref() == Some("studio")
                && w.configuration.and_then(|c| c.flow_sid).as_deref() == Some(flow.as_str())
        });
        if present {
            return Ok(());
        }
        let _: Created = self
            .client
            .post_form(
                Product::Conversations,
                &self.conversation_path(conversation, "/Webhooks"),
                &[
                    ("Target", "studio"),
                    ("Configuration.FlowSid", flow.as_str()),
                ],
                false,
            )
            .await?;
        Ok(())
    }
}

/// The first `{prefix}` + 32 hex digits in `text`.
fn sid_in<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    text.match_indices(prefix).find_map(|(at, _)| {
        let candidate = text.get(at..at + prefix.len() + 32)?;
        candidate[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::sid_in;

    #[test]
    fn a_sid_is_found_in_an_error_message() {
        let message = "Invalid parameter Channel: conversation CH00000000000000000000000000000001 \
                       already has a live interaction channel UO0123456789abcdef0123456789abcdef \
                       (interaction KD0123456789abcdef0123456789abcdef)";
        assert_eq!(
            sid_in(message, "KD"),
            Some("KD0123456789abcdef0123456789abcdef")
        );
        assert_eq!(sid_in("KD0123 and KDxyz", "KD"), None);
        assert_eq!(sid_in("ends with KD", "KD"), None);
    }
}

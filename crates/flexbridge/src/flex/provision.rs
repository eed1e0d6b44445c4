//! Provisioning, per backend. [`conversations`]: finding what the
//! Conversations backend routes with. Chat (here): the Flex Flow the blog
//! post creates with the Twilio CLI
//! (`twilio api:flex:v1:flex-flows:create --channel-type=custom …`), found
//! by friendly name (`GET /v1/FlexFlows?FriendlyName=…`) or created
//! (`POST /v1/FlexFlows` with `ChannelType=custom`, `IntegrationType=studio`,
//! `Integration.FlowSid`, `ChatServiceSid`, `ContactIdentity`,
//! `Enabled=true`). Running it twice finds what the first run created.
//! A found flow that differs from what the bridge needs is reported, not
//! changed.
//!
//! Both also check a configuration without creating anything, for
//! `flexbridge doctor`: [`check_flex_flow`] here, [`conversations::check`].

pub mod conversations;

use super::FlexError;
use super::client::{Product, TwilioClient};
use crate::flex::sid::{ChatServiceSid, FlexFlowSid, StudioFlowSid};

/// The Flex Flow the bridge needs.
#[derive(Debug, Clone)]
pub struct FlowSpec<'a> {
    pub friendly_name: &'a str,
    pub chat_service: &'a ChatServiceSid,
    pub studio_flow: &'a StudioFlowSid,
}

/// `ContactIdentity` of the flow, as in the post.
const CONTACT_IDENTITY: &str = "custom";

/// A Flex Flow as the API returns it (the fields the bridge checks).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct FlexFlow {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub chat_service_sid: Option<String>,
    pub channel_type: Option<String>,
    pub integration_type: Option<String>,
    pub enabled: Option<bool>,
    pub integration: Option<serde_json::Value>,
}

/// What provisioning did.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub flow_sid: FlexFlowSid,
    pub created: bool,
    /// How a found flow differs from the spec (empty when it matches).
    pub differences: Vec<String>,
}

/// Finds the flow by friendly name, or creates it.
pub async fn ensure_flex_flow(
    client: &TwilioClient,
    spec: &FlowSpec<'_>,
) -> Result<Provisioned, FlexError> {
    let found: Vec<FlexFlow> = client
        .list(
            Product::Flex,
            "/v1/FlexFlows",
            &[("FriendlyName", spec.friendly_name)],
            "flex_flows",
            20,
        )
        .await?;
    // The filter is the server's; check the name ourselves too.
    if let Some(flow) = found
        .into_iter()
        .find(|f| f.friendly_name.as_deref() == Some(spec.friendly_name))
    {
        return Ok(Provisioned {
            flow_sid: parse_sid(&flow.sid)?,
            created: false,
            differences: differences(&flow, spec),
        });
    }
    let flow: FlexFlow = client
        .post_form(
            Product::Flex,
            "/v1/FlexFlows",
            &[
                ("FriendlyName", spec.friendly_name),
                ("ChatServiceSid", spec.chat_service.as_str()),
                ("ChannelType", "custom"),
                ("IntegrationType", "studio"),
                ("Integration.FlowSid", spec.studio_flow.as_str()),
                ("ContactIdentity", CONTACT_IDENTITY),
                ("Enabled", "true"),
            ],
            false,
        )
        .await?;
    Ok(Provisioned {
        flow_sid: parse_sid(&flow.sid)?,
        created: true,
        differences: Vec::new(),
    })
}

fn parse_sid(raw: &str) -> Result<FlexFlowSid, FlexError> {
    FlexFlowSid::parse(raw).map_err(|e| FlexError::BadResponse(e.to_string()))
}

/// Where a found flow differs from what the bridge needs.
pub fn differences(flow: &FlexFlow, spec: &FlowSpec<'_>) -> Vec<String> {
    let mut out = channel_differences(flow, spec.chat_service);
    let flow_sid = flow
        .integration
        .as_ref()
        .and_then(|i| i.get("flow_sid"))
        .and_then(serde_json::Value::as_str);
    expect(
        &mut out,
        "integration.flow_sid",
        flow_sid,
        spec.studio_flow.as_str(),
    );
    out
}

/// Where `flow` differs from a custom, Studio-integrated, enabled flow in
/// `chat_service` (what the Chat backend relies on; its Studio flow is
/// the account's choice).
pub fn channel_differences(flow: &FlexFlow, chat_service: &ChatServiceSid) -> Vec<String> {
    let mut out = Vec::new();
    expect(
        &mut out,
        "channel_type",
        flow.channel_type.as_deref(),
        "custom",
    );
    expect(
        &mut out,
        "integration_type",
        flow.integration_type.as_deref(),
        "studio",
    );
    expect(
        &mut out,
        "chat_service_sid",
        flow.chat_service_sid.as_deref(),
        chat_service.as_str(),
    );
    if flow.enabled != Some(true) {
        out.push("the flow is not enabled".to_owned());
    }
    out
}

fn expect(out: &mut Vec<String>, what: &str, have: Option<&str>, want: &str) {
    if have != Some(want) {
        out.push(format!(
            "{what} is {} (expected {want})",
            have.unwrap_or("unset")
        ));
    }
}

/// The configured flow (`GET /v1/FlexFlows/{FO}`) and where it differs
/// from what the Chat backend relies on.
pub async fn check_flex_flow(
    client: &TwilioClient,
    flow: &FlexFlowSid,
    chat_service: &ChatServiceSid,
) -> Result<(FlexFlow, Vec<String>), FlexError> {
    let found: FlexFlow = client
        .get(Product::Flex, &format!("/v1/FlexFlows/{flow}"), &[])
        .await?;
    let differences = channel_differences(&found, chat_service);
    Ok((found, differences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_found_flow_that_differs_is_reported_field_by_field() {
        let chat = ChatServiceSid::parse("IS0123456789abcdef0123456789abcdef").unwrap();
        let studio = StudioFlowSid::parse("FW0123456789abcdef0123456789abcdef").unwrap();
        let spec = FlowSpec {
            friendly_name: "x",
            chat_service: &chat,
            studio_flow: &studio,
        };
        let matching = FlexFlow {
            sid: "FO0123456789abcdef0123456789abcdef".into(),
            friendly_name: Some("x".into()),
            chat_service_sid: Some(chat.to_string()),
            channel_type: Some("custom".into()),
            integration_type: Some("studio".into()),
            enabled: Some(true),
            integration: Some(serde_json::json!({"flow_sid": studio.to_string()})),
        };
        assert!(differences(&matching, &spec).is_empty());
        let other = FlexFlow {
            channel_type: Some("web".into()),
            enabled: Some(false),
            ..matching
        };
        let found = differences(&other, &spec);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("channel_type is web"));
    }
}

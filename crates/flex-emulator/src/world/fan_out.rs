//! Where events go. A Chat channel event ([`World::fire`],
//! `docs/twilio-reference.md` §7.1): each of the channel's webhooks whose filters name the event gets a
//! signed delivery (queued for the dispatcher, never sent from here); a
//! `trigger` webhook gets `onMessageSent` when the body holds one of its
//! words; a `studio` webhook runs its flow's "Send to Flex" on
//! `onMessageSent`; a Flex channel of a task-integration flow waiting for
//! its first message gets its task.
//!
//! Nothing fires unless the actor allows it: REST calls need
//! `X-Twilio-Webhook-Enabled: true`; agent actions always fire.
//!
//! [`World::fan_out`] (queueing the deliveries, running the flows) also
//! serves the Conversations events (`conversations/events.rs`): both
//! backends' webhooks are the same settings (`hooks.rs`) and react to events
//! the same way.

use super::World;
use super::actor::Actor;
use super::hooks::{Audience, Fired, Listener, Reaction};
use crate::webhooks::{HookMethod, Job};

impl World {
    /// Fires a channel event (see the module docs).
    pub(crate) fn fire(&mut self, channel_sid: &str, fired: Fired, actor: &Actor) {
        if !actor.fires_webhooks {
            return;
        }
        let Some(channel) = self.chat.channels.get(channel_sid) else {
            return;
        };
        let waiting_for_task = channel.flex.as_ref().is_some_and(|b| b.task_on_message);
        let listeners = channel.webhooks.iter().filter_map(|webhook| {
            Some(Listener {
                reaction: webhook.settings.reaction(&fired)?,
                sid: webhook.sid.clone(),
                extra: vec![("WebhookType", webhook.settings.kind.as_str().to_owned())],
                retries: webhook.retry_count,
            })
        });
        let audience = Audience {
            queue: channel_sid.to_owned(),
            service: ("InstanceSid", channel.service_sid.clone()),
            listeners: listeners.collect(),
        };
        self.fan_out(audience, &fired, actor);
        if waiting_for_task && fired.is_message() {
            self.create_flow_task(channel_sid, None);
        }
    }

    /// Queues one signed delivery of `fired` for each listener that wants
    /// it, in order, then runs the Studio flows it starts ("Send to Flex").
    pub(crate) fn fan_out(&mut self, audience: Audience, fired: &Fired, actor: &Actor) {
        let mut flows = Vec::new();
        for listener in &audience.listeners {
            match &listener.reaction {
                Reaction::Deliver { url, method } => {
                    self.deliver(&audience, listener, url, *method, fired, actor);
                }
                Reaction::RunFlow(flow_sid) => flows.push(flow_sid),
            }
        }
        let author = fired.author().unwrap_or_default();
        for flow_sid in flows {
            self.send_to_flex(&audience.queue, flow_sid, author);
        }
    }

    /// Queues one signed delivery: `AccountSid`, the service, `EventType`,
    /// `Source`, `ClientIdentity` (agents), `WebhookSid`, the listener's
    /// extra parameters, then the event's own.
    fn deliver(
        &mut self,
        audience: &Audience,
        listener: &Listener,
        url: &str,
        method: HookMethod,
        fired: &Fired,
        actor: &Actor,
    ) {
        let (service_name, service_sid) = &audience.service;
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.credentials.account_sid.clone()),
            ((*service_name).into(), service_sid.clone()),
            ("EventType".into(), fired.event_type.to_owned()),
            ("Source".into(), actor.source.as_str().to_owned()),
        ];
        if let Some(identity) = &actor.identity {
            params.push(("ClientIdentity".into(), identity.clone()));
        }
        params.push(("WebhookSid".into(), listener.sid.clone()));
        let named = listener.extra.iter().chain(fired.params());
        params.extend(named.map(|(name, value)| ((*name).to_owned(), value.clone())));
        let job = Job {
            generation: self.generation,
            channel_sid: audience.queue.clone(),
            queue: audience.queue.clone(),
            webhook_sid: listener.sid.clone(),
            url: url.to_owned(),
            method,
            event_type: fired.event_type.to_owned(),
            params,
            retries: listener.retries,
        };
        self.enqueue_webhook(job);
    }
}

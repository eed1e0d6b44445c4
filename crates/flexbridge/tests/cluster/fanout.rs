//! Rooms across bridges (Redis adapter): what happens on one bridge
//! reaches the customer's sockets on the others.

use std::time::Duration;

use serde_json::json;

use crate::{Tab, register, shared, wait_for};

/// Customer on bridge A; Twilio's webhooks go to bridge B (both tell
/// Twilio B's URL, as a load balancer could route them): the agent's reply
/// reaches the customer on A exactly once. A second tab of the customer,
/// on B, and the first see each other's messages, in the same
/// conversation, and both hear the chat end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_landing_on_another_bridge_and_a_tab_on_another_bridge_reach_the_customer() {
    let shared = shared(1, 5).await;
    let b = shared.bridge("b", None).await;
    let a = shared.bridge("a", Some(&b.public_base_url)).await;

    let (mut tab_a, token, _id) = register(&a.url(), "Ada").await;
    let ack = tab_a.say("m1", "hello from A").await.expect("acked");
    let conversation = ack["ok"]["conversationId"]
        .as_str()
        .expect("accepted")
        .to_owned();

    // The agent takes the task and answers; Twilio calls B.
    let accepted = wait_for("the agent has the task", || async {
        let accepted = shared.accept_all().await;
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    let (agent, task, _) = &accepted[0];
    shared.agent_says(agent, task, "hi Ada, agent here").await;
    let reply = tab_a.message("hi Ada, agent here").await;
    assert_eq!(reply["direction"], "agent");
    assert_eq!(reply["conversationId"], conversation.as_str());
    tab_a.settle(Duration::from_millis(700)).await;
    assert_eq!(
        tab_a.count("hi Ada, agent here"),
        1,
        "the reply arrives once"
    );
    let webhooks = shared.webhook_urls().await;
    assert!(!webhooks.is_empty(), "Twilio sent webhooks");
    assert!(
        webhooks.iter().all(|url| url.starts_with(&b.url())),
        "every webhook went to B: {webhooks:?}"
    );

    // A second tab, on B, resuming after what tab A has seen.
    let last_seq = reply["seq"].as_i64().expect("a seq");
    let mut tab_b = Tab::connect(&b.url(), json!({ "token": token, "lastSeq": last_seq }))
        .await
        .expect("the token connects on B");
    let session = tab_b.next("session").await.expect("a session on B");
    assert_eq!(session["conversation"]["id"], conversation.as_str());

    let from_a = tab_a.say("m2", "typed in tab A").await.expect("acked");
    assert_eq!(from_a["ok"]["conversationId"], conversation.as_str());
    let seen_on_b = tab_b.message("typed in tab A").await;
    assert_eq!(seen_on_b["conversationId"], conversation.as_str());

    let from_b = tab_b.say("m3", "typed in tab B").await.expect("acked");
    assert_eq!(from_b["ok"]["conversationId"], conversation.as_str());
    let seen_on_a = tab_a.message("typed in tab B").await;
    assert_eq!(seen_on_a["conversationId"], conversation.as_str());

    // Both reach Flex, once each and in order, in the one conversation.
    let flex = wait_for("the three messages are in Flex", || async {
        let conversations = shared.flex_conversations().await;
        conversations
            .iter()
            .any(|(_, bodies)| bodies.len() >= 3)
            .then_some(conversations)
    })
    .await;
    assert_eq!(flex.len(), 1, "one Flex conversation: {flex:?}");
    assert_eq!(
        flex[0].1,
        ["hello from A", "typed in tab A", "typed in tab B"]
    );

    // A state change (the customer ends the chat on B) reaches both tabs.
    let ended = tab_b
        .client
        .emit_with_ack("chat:end", &json!({}), Duration::from_secs(10))
        .await
        .expect("chat:end acked");
    assert_eq!(ended.args[0]["ok"]["ended"], true, "{:?}", ended.args);
    let on_a = tab_a.next("chat:ended").await.expect("tab A hears the end");
    let on_b = tab_b.next("chat:ended").await.expect("tab B hears the end");
    assert_eq!(on_a["conversationId"], conversation.as_str());
    assert_eq!(on_b["conversationId"], conversation.as_str());
    tab_a.settle(Duration::from_millis(500)).await;
    tab_b.settle(Duration::from_millis(500)).await;
    for tab in [&tab_a, &tab_b] {
        assert_eq!(tab.count("typed in tab A"), 1);
        assert_eq!(tab.count("typed in tab B"), 1);
    }
}

//! Switching `FLEX_BACKEND` with conversations open: each conversation
//! stays with the backend that opened it until it ends; the next one opens
//! with the new backend. No drain, no downtime beyond the restart.

use flexbridge::flex::BackendKind;
use serde_json::json;

use crate::{TestApp, eventually, on_both_backends, say, spawn_app};

on_both_backends!(
    a_conversation_open_when_the_backend_changes_stays_with_the_backend_that_opened_it
);

fn other(backend: BackendKind) -> BackendKind {
    match backend {
        BackendKind::Chat => BackendKind::Conversations,
        BackendKind::Conversations => BackendKind::Chat,
    }
}

async fn a_conversation_open_when_the_backend_changes_stays_with_the_backend_that_opened_it(
    from: BackendKind,
) {
    let to = other(from);
    let mut app = spawn_app(from).await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    say(&mut socket, "m1", "before the switch").await;
    let old_channel = app.channel_of(&ada.id).await;
    let work = app.accept(None).await;
    drop(socket);

    app.crash().await;
    app.settings.flex.backend = to;
    app.backend = to;
    app.restart().await;

    let mut tab = app.tab(&ada.token, 0).await;
    tab.next_event("session").await;
    say(&mut tab, "m2", "after the switch").await;
    eventually("the old channel got the message", || async {
        TestApp::customer_bodies(&app.channel(&old_channel).await).len() == 2
    })
    .await;
    assert_eq!(
        TestApp::customer_bodies(&app.channel(&old_channel).await),
        ["before the switch", "after the switch"]
    );
    app.agent_says(&work.agent, &work.task, "still here").await;
    let reply = tab
        .next_event_where("message", |m| m["body"] == json!("still here"))
        .await;
    assert_eq!(reply["direction"], json!("agent"));
    assert_eq!(app.conversation_of(&ada.id).await.backend, from);

    app.agent_ends(&work.agent, &work.task).await;
    tab.next_event("chat:ended").await;
    say(&mut tab, "m3", "a new question").await;

    let new_channel = crate::wait_for("the next conversation opens", || async {
        let conversation = app.conversation_of(&ada.id).await;
        conversation
            .flex_channel
            .filter(|sid| sid.as_str() != old_channel)
            .map(|sid| (sid.to_string(), conversation.backend))
    })
    .await;
    assert_eq!(new_channel.1, to);
    let in_new_backend = app.channels_of(to).await;
    assert!(
        in_new_backend
            .iter()
            .any(|c| c["sid"] == json!(new_channel.0)),
        "{in_new_backend:?}"
    );
    eventually("the new conversation got the message", || async {
        TestApp::customer_bodies(&app.channel(&new_channel.0).await) == ["a new question"]
    })
    .await;
}

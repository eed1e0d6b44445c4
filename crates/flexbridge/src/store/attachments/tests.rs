//! Attachments over a real store (SQLite and PostgreSQL): an upload is durable with its
//! bytes and its customer's only; one message carries it, a retry of that
//! message finds the original; the outbox's job carries the file and the
//! Flex id once recorded; an agent's file is stored with its message once
//! and its bytes kept when fetched.

use super::*;
use crate::core::attachment::RemoteMedia;
use crate::core::backend::Opened;
use crate::core::ids::{RemoteChannel, RemoteMessage, Seq};
use crate::core::storage::{Accepted, AgentMessage, EventKey, Inbound};
use crate::core::work::{Begin, JobKind, NextJob};
use crate::store::test_support::{
    CHAT, TestDb, customer, incoming, on_both_databases, reopen, temp_store,
};

on_both_databases!(
    an_upload_is_durable_with_its_bytes_and_only_its_customers,
    one_message_carries_a_file_and_its_retry_finds_the_original,
    the_send_job_carries_the_file_and_then_its_recorded_flex_id,
    an_agents_file_is_stored_with_its_message_once_and_its_bytes_kept_when_fetched,
);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

async fn upload(store: &Store, customer: &CustomerId) -> Attachment {
    store
        .attachments()
        .store_upload(NewUpload {
            customer: customer.clone(),
            filename: "shot.png".into(),
            content_type: "image/png".into(),
            bytes: PNG.to_vec(),
            now: 1,
        })
        .await
        .expect("stored")
}

async fn send_file(store: &Store, customer: &CustomerId, id: &str, file: &Attachment) -> Accepted {
    let mut message = incoming(customer, id, "shot.png", CHAT, 5);
    message.attachment = Some(file.clone());
    store.messages().accept(message).await.expect("accepted")
}

async fn an_upload_is_durable_with_its_bytes_and_only_its_customers(db: TestDb) {
    let (store, dir) = temp_store(db).await;
    let ada = customer(&store).await;
    let bob = customer(&store).await;

    let file = upload(&store, &ada).await;
    store.close().await;
    let store = reopen(&dir).await;

    let found = store
        .attachments()
        .customer_file(&ada, &file.id)
        .await
        .unwrap()
        .expect("Ada's file");
    assert_eq!(found.attachment, file);
    assert_eq!(found.content.as_deref(), Some(PNG));
    assert!(!found.carried);
    assert_eq!(
        store
            .attachments()
            .customer_file(&bob, &file.id)
            .await
            .unwrap(),
        None,
        "another customer's file is not found"
    );
}

async fn one_message_carries_a_file_and_its_retry_finds_the_original(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let ada = customer(&store).await;
    let file = upload(&store, &ada).await;

    let first = send_file(&store, &ada, "f1", &file).await;
    let retry = send_file(&store, &ada, "f1", &file).await;
    let other = send_file(&store, &ada, "f2", &file).await;

    let Accepted::New { message, .. } = first else {
        panic!("the first is new: {first:?}");
    };
    assert_eq!(message.attachment.as_ref(), Some(&file));
    assert_eq!(
        retry,
        Accepted::Duplicate {
            message: message.clone()
        }
    );
    assert_eq!(other, Accepted::AttachmentCarried);
    let replay = store.messages().since(&ada, Seq(0), 10).await.unwrap();
    assert_eq!(replay, vec![message], "stored once, with its file");
}

async fn the_send_job_carries_the_file_and_then_its_recorded_flex_id(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let ada = customer(&store).await;
    let file = upload(&store, &ada).await;
    let Accepted::New {
        opened: Some(conversation),
        ..
    } = send_file(&store, &ada, "f1", &file).await
    else {
        panic!("opens a conversation");
    };
    let NextJob::Ready(open) = store
        .outbox()
        .take(&conversation.id, Begin::DueBy(10))
        .await
        .unwrap()
    else {
        panic!("the open job");
    };
    let opened = Opened {
        channel: RemoteChannel::new("CH00000000000000000000000000000001"),
        flex_ref: None,
    };
    let (_, next) = store
        .outbox()
        .finish_open(&open, &opened, 11, Begin::DueBy(11))
        .await
        .unwrap();

    let NextJob::Ready(send) = next else {
        panic!("the send job is next: {next:?}");
    };
    let JobKind::Send(message) = &send.kind else {
        panic!("a send");
    };
    let carried = message.attachment.as_ref().expect("the file");
    assert_eq!((&carried.attachment, &carried.media), (&file, &None));
    assert_eq!(
        store
            .attachments()
            .content(&file.id)
            .await
            .unwrap()
            .as_deref(),
        Some(PNG)
    );

    store
        .attachments()
        .set_media(&file.id, "ME1")
        .await
        .unwrap();
    let NextJob::Ready(again) = store
        .outbox()
        .take(&conversation.id, Begin::DueBy(12))
        .await
        .unwrap()
    else {
        panic!("still the send job");
    };
    let JobKind::Send(message) = &again.kind else {
        panic!("a send");
    };
    assert_eq!(
        message.attachment.as_ref().and_then(|a| a.media.as_deref()),
        Some("ME1"),
        "a retry does not upload again"
    );
}

async fn an_agents_file_is_stored_with_its_message_once_and_its_bytes_kept_when_fetched(
    db: TestDb,
) {
    let (store, _dir) = temp_store(db).await;
    let ada = customer(&store).await;
    let Accepted::New {
        opened: Some(conversation),
        ..
    } = store
        .messages()
        .accept(incoming(&ada, "m1", "hello", CHAT, 1))
        .await
        .unwrap()
    else {
        panic!("opens");
    };
    let channel = RemoteChannel::new("CH00000000000000000000000000000002");
    let NextJob::Ready(open) = store
        .outbox()
        .take(&conversation.id, Begin::DueBy(2))
        .await
        .unwrap()
    else {
        panic!("the open job");
    };
    let opened = Opened {
        channel: channel.clone(),
        flex_ref: None,
    };
    store
        .outbox()
        .finish_open(&open, &opened, 2, Begin::Nothing)
        .await
        .unwrap();
    let key = EventKey {
        idempotency_key: "k".into(),
        event_type: "onMessageAdded".into(),
        channel,
        now: 3,
    };
    let agent = AgentMessage {
        message: RemoteMessage::new("IM00000000000000000000000000000009"),
        index: None,
        check_gap: false,
        author: "alice".into(),
        body: "guide.pdf".into(),
        media: Some(RemoteMedia {
            sid: "ME00000000000000000000000000000009".into(),
            filename: Some("../guide.pdf".into()),
            content_type: "application/pdf".into(),
            size: 9,
        }),
    };

    let first = store
        .messages()
        .record_agent(key.clone(), agent.clone())
        .await
        .unwrap();
    let again = store.messages().record_agent(key, agent).await.unwrap();

    let Inbound::Applied(stored) = first else {
        panic!("stored: {first:?}");
    };
    assert_eq!(again, Inbound::Duplicate);
    let file = stored.message.attachment.expect("with its file");
    assert_eq!(file.filename, "guide.pdf");
    let found = store
        .attachments()
        .customer_file(&ada, &file.id)
        .await
        .unwrap()
        .expect("Ada's");
    assert_eq!(
        (found.content, found.media.as_deref(), found.backend),
        (None, Some("ME00000000000000000000000000000009"), Some(CHAT))
    );
    store
        .attachments()
        .keep_fetched(&file.id, b"%PDF-1.7\n")
        .await
        .unwrap();
    let found = store
        .attachments()
        .customer_file(&ada, &file.id)
        .await
        .unwrap()
        .expect("Ada's");
    assert_eq!(found.content.as_deref(), Some(&b"%PDF-1.7\n"[..]));
    let replay = store.messages().since(&ada, Seq(0), 10).await.unwrap();
    assert_eq!(replay.len(), 2);
    assert_eq!(replay[1].attachment.as_ref(), Some(&file));
}

//! Files: a customer's file is uploaded to Flex once and its message
//! posted once, in order with the text around it, through failed and
//! rate-limited uploads and failed posts.

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

impl Harness {
    /// Uploads a PNG and sends it as message `client_id` (announced).
    async fn send_file(&self, client_id: &str) {
        let file = self
            .bridge
            .upload(
                &self.customer,
                "image/png",
                &format!("{client_id}.png"),
                PNG.to_vec(),
            )
            .await
            .expect("uploaded");
        let sent = self
            .bridge
            .send_attachment(
                &self.customer,
                &ClientMessageId::parse(client_id).expect("valid"),
                &file.id,
            )
            .await
            .expect("accepted");
        self.bridge.announce(&self.customer.id, &sent).await;
    }
}

#[tokio::test]
async fn a_file_reaches_flex_once_in_order_through_failed_and_rate_limited_uploads() {
    let h = harness().await;
    lock(&h.flex.upload_faults).extend([
        Fault::Status(500),
        Fault::RateLimited(Duration::from_secs(1)),
        Fault::Lands(500),
    ]);
    h.send("m0").await;
    h.send_file("f1").await;
    h.send("m2").await;

    h.run_until("all three are in Flex", || h.flex.posted().len() >= 3)
        .await;

    assert_eq!(ids(&h.flex.posted()), ["m0", "f1", "m2"]);
    let media = lock(&h.flex.posted_media).clone();
    assert_eq!(
        media.len(),
        1,
        "the file's message is posted once: {media:?}"
    );
    assert_eq!(media[0].0, "f1");
    // The upload that landed behind a 500 is left unused; the retry's is posted.
    assert_eq!(lock(&h.flex.uploads).len(), 2);
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_post_of_a_file_is_retried_without_uploading_it_again() {
    let h = harness().await;
    lock(&h.flex.send_faults).extend([Fault::Status(500), Fault::Lands(503)]);
    h.send_file("f1").await;

    h.run_until("the file's message is acknowledged", || {
        h.fanout.deliveries().len() == 1
    })
    .await;

    assert_eq!(ids(&h.flex.posted()), ["f1"], "posted once");
    assert_eq!(lock(&h.flex.uploads).clone(), ["f1.png"], "uploaded once");
    assert_eq!(lock(&h.flex.posted_media).len(), 1);
}

#[tokio::test]
async fn a_file_refused_by_flex_fails_its_message_and_the_next_goes_on() {
    let h = harness().await;
    lock(&h.flex.upload_faults).push_back(Fault::Status(400));
    h.send_file("f1").await;
    h.send("m2").await;

    h.run_until("both are settled", || h.fanout.deliveries().len() == 2)
        .await;

    assert_eq!(ids(&h.flex.posted()), ["m2"]);
    let outcomes: Vec<_> = h
        .fanout
        .deliveries()
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert!(
        matches!(
            &outcomes[..],
            [DeliveryOutcome::Failed(_), DeliveryOutcome::Delivered]
        ),
        "{outcomes:?}"
    );
}

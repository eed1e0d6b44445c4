//! Several bridges on one PostgreSQL database (issue 9, first half): they
//! share the outbox through leases — a crashed bridge's conversations are
//! taken over within the lease, exactly once and in order — and bridges
//! starting together re-attach each open conversation once; without
//! `REDIS_URL` a second bridge refuses to start; PostgreSQL stopped for a
//! few seconds makes the bridge unready and its acks `internal`, loses
//! nothing acknowledged, and the bridge recovers by itself.
//!
//! `REDIS_URL` is set where several bridges run, as a deployment must: a
//! real Redis (`testbed`), one per test process, since the bridges' rooms
//! go through it. Customers stay on one bridge here.

use std::time::{Duration, Instant};

use flexbridge::config::{PublicBaseUrl, Settings};
use flexbridge::dev::DevFlex;
use serde_json::{Value, json};

use crate::{
    Database, RunningBridge, SioClient, TestApp, eventually, say, spawn_app_with, wait_for,
};

/// This test process's Redis (see the module doc): started on first use,
/// stopped when the process ends.
fn redis_url() -> url::Url {
    static REDIS: std::sync::OnceLock<testbed::redis::Redis> = std::sync::OnceLock::new();
    let redis = REDIS.get_or_init(|| testbed::redis::Redis::start().expect("a Redis"));
    url::Url::parse(&redis.url()).expect("a URL")
}

/// The lease these tests run with: short, so takeovers come quickly.
const LEASE: Duration = Duration::from_millis(1_000);

/// Another bridge on the test app's database and emulator, on a port of
/// its own (which is also its `PUBLIC_BASE_URL`).
struct Node {
    url: String,
    /// Dropped, the bridge crashes.
    _bridge: RunningBridge,
}

impl TestApp {
    /// Starts another bridge with the app's settings changed by `adjust`.
    async fn another_bridge(&self, adjust: impl FnOnce(&mut Settings)) -> Result<Node, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address");
        let url = format!("http://{addr}");
        let mut settings = self.settings.clone();
        settings.port = addr.port();
        settings.public_base_url = PublicBaseUrl::Fixed(url::Url::parse(&url).expect("a URL"));
        adjust(&mut settings);
        let bridge = RunningBridge::try_start(settings, listener).await?;
        Ok(Node {
            url,
            _bridge: bridge,
        })
    }

    /// The emulator's conversation of `customer` (its customer messages).
    async fn bodies_of(&self, customer: &flexbridge::core::ids::CustomerId) -> Vec<String> {
        let channel = self.channel_of(customer).await;
        TestApp::customer_bodies(&self.channel(&channel).await)
    }

    /// How many requests the HTTP fault `id` has matched so far, of the
    /// `count` it was made with.
    async fn fault_matches(&self, id: &Value, count: i64) -> i64 {
        let faults = self.emulator_get("/_emulator/faults").await;
        let remaining = faults["http"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == *id)
            .and_then(|f| f["remaining"].as_i64())
            .unwrap_or(0);
        count - remaining
    }
}

/// A bridge on PostgreSQL that shares its database (`REDIS_URL`), with a
/// short lease.
async fn shared_app() -> TestApp {
    spawn_app_with(DevFlex::default(), |settings| {
        settings.redis_url = Some(redis_url());
        settings.outbox.lease = LEASE;
    })
    .await
}

fn bodies(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("message {i}")).collect()
}

async fn send(socket: &mut SioClient, range: std::ops::Range<usize>) {
    for i in range {
        say(socket, &format!("m{i}"), &format!("message {i}")).await;
    }
}

#[tokio::test]
async fn a_crashed_bridges_conversations_are_taken_over_within_the_lease_exactly_once_and_in_order()
{
    Database::Postgres
        .run(async {
            let mut a = shared_app().await;
            let mut customers = Vec::new();
            for name in ["Ada", "Bo", "Cy"] {
                let mut customer = a.customer(name).await;
                send(&mut customer.socket, 0..1).await;
                customers.push(customer);
            }
            for customer in &customers {
                eventually("the first message is in Flex", || async {
                    a.bodies_of(&customer.id).await == bodies(0..1)
                })
                .await;
            }

            // Flex stores each next message at once but answers bridge A
            // only after 6 s: A dies with three sends in flight, their
            // outcomes unrecorded, and more messages queued behind them.
            a.fault(json!({"method": "POST", "path": a.flavour().messages_path,
                           "kind": "delay", "delay_ms": 6_000, "count": customers.len()}))
                .await;
            for customer in &mut customers {
                send(&mut customer.socket, 1..4).await;
            }
            for customer in &customers {
                eventually("the in-flight message landed in Flex", || async {
                    a.bodies_of(&customer.id).await == bodies(0..2)
                })
                .await;
                let conversation = a.conversation_of(&customer.id).await;
                let holder = a.store.leases().holder_of(&conversation.id).await;
                assert!(holder.expect("read").is_some(), "A holds the delivery");
            }
            // B joins now: A's leases keep it off these conversations
            // (started earlier, its sweep could have taken one between a
            // commit and A's claim).
            let b = a.another_bridge(|_| {}).await.expect("bridge B starts");
            a.crash().await;
            let crashed = Instant::now();

            // B never had these customers' sockets: it finds their queues
            // when A's leases expire, looks first for the message A had in
            // flight, and delivers the rest once each, in order.
            for customer in &customers {
                eventually("B delivered what A left", || async {
                    a.bodies_of(&customer.id).await.len() >= 4
                })
                .await;
            }
            let took = crashed.elapsed();
            assert!(
                took < LEASE + Duration::from_secs(5),
                "taken over {took:?} after the crash (lease {LEASE:?})"
            );
            // The customers come back through B and go on.
            for customer in &customers {
                let mut tab =
                    SioClient::connect(&b.url, json!({"token": customer.token, "lastSeq": 4}))
                        .await
                        .expect("reconnected to B");
                tab.next_event("session").await;
                send(&mut tab, 4..5).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            for customer in &customers {
                eventually("B delivered the message sent to it", || async {
                    a.bodies_of(&customer.id).await.len() >= 5
                })
                .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert_eq!(
                    a.bodies_of(&customer.id).await,
                    bodies(0..5),
                    "each message once, in order"
                );
                let conversation = a.conversation_of(&customer.id).await;
                let holder = a.store.leases().holder_of(&conversation.id).await;
                assert_eq!(holder.expect("read"), None, "the lease is released");
            }
            assert_eq!(a.store.outbox().depth().await.expect("depth"), 0);
            // The takeovers are counted (the bridges of this test process
            // share one metrics registry), and the leases held reported.
            let metrics = a
                .http
                .get(format!("{}/metrics", b.url))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("a body");
            let takeovers: f64 = metrics
                .lines()
                .find_map(|line| line.strip_prefix("flexbridge_outbox_takeovers_total "))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| panic!("no takeovers counted in {metrics}"));
            assert!(takeovers >= customers.len() as f64, "{takeovers}");
            assert!(
                metrics.contains("flexbridge_outbox_leases_held"),
                "{metrics}"
            );
            drop(b);
        })
        .await;
}

#[tokio::test]
async fn bridges_starting_together_re_attach_each_open_conversation_once() {
    Database::Postgres
        .run(async {
            let mut a = shared_app().await;
            let mut customers = Vec::new();
            for name in ["Ada", "Bo", "Cy", "Di"] {
                let mut customer = a.customer(name).await;
                send(&mut customer.socket, 0..1).await;
                customers.push(customer);
            }
            for customer in &customers {
                a.channel_of(&customer.id).await;
            }
            a.crash().await;

            // Each re-attachment lists the conversation's webhooks once:
            // this fault (a 1 ms delay) counts those requests.
            let count = 10_000;
            let fault = a
                .emulator_post(
                    "/_emulator/faults/http",
                    json!({"method": "GET", "path": "/v1/Services/*/Conversations/*/Webhooks",
                           "kind": "delay", "delay_ms": 1, "count": count}),
                )
                .await;
            let fault_id = fault["id"].clone();
            let (b, c, d) = tokio::join!(
                a.another_bridge(|_| {}),
                a.another_bridge(|_| {}),
                a.another_bridge(|_| {}),
            );
            let _bridges = [b.expect("B"), c.expect("C"), d.expect("D")];

            let synced = customers.len() as i64;
            wait_for("every open conversation is re-attached", || async {
                (a.fault_matches(&fault_id, count).await >= synced).then_some(())
            })
            .await;
            // Several sweeps later, still once each.
            tokio::time::sleep(LEASE * 2).await;
            assert_eq!(a.fault_matches(&fault_id, count).await, synced);
            assert_eq!(a.store.outbox().depth().await.expect("depth"), 0);
        })
        .await;
}

#[tokio::test]
async fn a_second_bridge_without_redis_refuses_to_start_on_a_database_one_holds() {
    Database::Postgres
        .run(async {
            let mut a = spawn_app_with(DevFlex::default(), |_| {}).await;

            let without = a.another_bridge(|_| {}).await;
            let error = without.err().expect("refused");
            assert!(
                error.contains("another flexbridge is running") && error.contains("REDIS_URL"),
                "{error}"
            );
            let with = a
                .another_bridge(|settings| {
                    settings.redis_url = Some(redis_url());
                })
                .await;
            let error = with.err().expect("refused too");
            assert!(
                error.contains("without REDIS_URL holds this PostgreSQL database alone"),
                "{error}"
            );

            // Once the first is gone, the lock is free.
            a.crash().await;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match a.another_bridge(|_| {}).await {
                    Ok(_next) => break,
                    Err(error) => {
                        assert!(Instant::now() < deadline, "still refused: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .await;
}

#[tokio::test]
async fn postgres_stopped_for_a_few_seconds_makes_acks_internal_loses_nothing_acked_and_the_bridge_recovers()
 {
    let server = tokio::task::spawn_blocking(testbed::postgres::Postgres::start)
        .await
        .expect("joined")
        .expect("a PostgreSQL server of this test's own");
    let url = server.url("postgres");
    let app = spawn_app_with(DevFlex::default(), |settings| {
        settings.database_url = url.clone();
    })
    .await;
    let ready = || async {
        app.http
            .get(format!("{}/readyz", app.url))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let mut ada = app.customer("Ada").await;
    send(&mut ada.socket, 0..1).await;
    assert_eq!(ready().await, 200);

    let server = std::sync::Arc::new(server);
    let stopping = server.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("joined")
        .expect("PostgreSQL stopped");

    eventually("/readyz says not ready", || async { ready().await == 503 }).await;
    let ack = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "m1", "body": "message 1"}),
        )
        .await;
    assert_eq!(ack["error"]["code"], json!("internal"), "{ack}");

    let starting = server.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .expect("joined")
        .expect("PostgreSQL started again");
    eventually("/readyz says ready again", || async {
        ready().await == 200
    })
    .await;
    // The client retries what was refused, as `internal` invites; the
    // bridge goes on by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ack = ada
            .socket
            .emit_with_ack(
                "message",
                json!({"clientMessageId": "m1", "body": "message 1"}),
            )
            .await;
        if ack["ok"].is_object() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retried message is refused: {ack}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(&mut ada.socket, 2..3).await;
    eventually("every acknowledged message is in Flex", || async {
        app.bodies_of(&ada.id).await.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.bodies_of(&ada.id).await, bodies(0..3));
    drop(app);
    drop(server);
}

/// A customer with a tab on each bridge: the second resumes with the
/// token issued by the first (resume tokens live in the database).
async fn tab_on(
    node: &Node,
    token: &str,
    customer: &flexbridge::core::ids::CustomerId,
) -> SioClient {
    let mut tab = SioClient::connect(&node.url, json!({"token": token, "lastSeq": 0}))
        .await
        .expect("the other bridge takes the token");
    let session = tab.next_event("session").await;
    assert_eq!(session["customer"]["id"], json!(customer.to_string()));
    tab
}

#[tokio::test]
async fn five_first_messages_from_tabs_on_two_bridges_open_one_flex_conversation() {
    Database::Postgres
        .run(async {
            let a = shared_app().await;
            let b = a.another_bridge(|_| {}).await.expect("bridge B starts");
            let ada = a.customer("Ada").await;
            let mut tabs = vec![ada.socket];
            tabs.push(tab_on(&b, &ada.token, &ada.id).await);
            tabs.push(a.tab(&ada.token, 0).await);
            tabs.push(tab_on(&b, &ada.token, &ada.id).await);
            tabs.push(a.tab(&ada.token, 0).await);

            // Three tabs on A, two on B, each sending its first message at
            // once: one conversation takes all five.
            let acks =
                futures::future::join_all(tabs.iter_mut().enumerate().map(|(i, tab)| async move {
                    tab.emit_with_ack(
                        "message",
                        json!({"clientMessageId": format!("t{i}"), "body": format!("tab {i}")}),
                    )
                    .await
                }))
                .await;
            let conversations: std::collections::HashSet<String> = acks
                .iter()
                .map(|ack| {
                    assert!(ack["ok"].is_object(), "{ack}");
                    ack["ok"]["conversationId"].to_string()
                })
                .collect();
            assert_eq!(conversations.len(), 1, "{acks:?}");

            eventually("all five messages are in Flex", || async {
                a.bodies_of(&ada.id).await.len() >= 5
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut sent = a.bodies_of(&ada.id).await;
            sent.sort();
            let want: Vec<String> = (0..5).map(|i| format!("tab {i}")).collect();
            assert_eq!(sent, want, "each once");
            assert_eq!(a.channels().await.len(), 1, "one Flex conversation");
        })
        .await;
}

#[tokio::test]
async fn a_customers_rate_limit_holds_across_bridges() {
    Database::Postgres
        .run(async {
            let a = spawn_app_with(DevFlex::default(), |settings| {
                settings.redis_url = Some(redis_url());
                settings.outbox.lease = LEASE;
                settings.rate_limit = flexbridge::core::rate_limit::RateLimit {
                    burst: 4.0,
                    per_second: 0.01,
                };
            })
            .await;
            let b = a.another_bridge(|_| {}).await.expect("bridge B starts");
            let mut ada = a.customer("Ada").await;
            let mut on_b = tab_on(&b, &ada.token, &ada.id).await;

            // Four tokens in all: two taken on A, two on B.
            send(&mut ada.socket, 0..2).await;
            for i in 2..4 {
                say(&mut on_b, &format!("m{i}"), &format!("message {i}")).await;
            }
            for socket in [&mut on_b, &mut ada.socket] {
                let ack = socket
                    .emit_with_ack(
                        "message",
                        json!({"clientMessageId": "m4", "body": "message 4"}),
                    )
                    .await;
                assert_eq!(ack["error"]["code"], json!("rate_limited"), "{ack}");
            }
            eventually("the four accepted are in Flex", || async {
                a.bodies_of(&ada.id).await == bodies(0..4)
            })
            .await;
        })
        .await;
}

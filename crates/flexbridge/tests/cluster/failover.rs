//! Three bridges behind nginx, customers streaming through it: one bridge
//! SIGKILLed mid-stream, or each SIGTERMed in turn (a rolling restart).
//! Every acknowledged message reaches Flex exactly once and in order, in
//! one conversation per customer; customers reconnect through nginx and
//! resume their conversation; agents' replies reach them afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use testbed::nginx::Nginx;

use crate::{Bridge, PATIENCE, Shared, Tab, free_port, register, shared, wait_for};

/// How a customer streams.
#[derive(Clone, Copy)]
struct Pace {
    /// Messages sent at least (and, unless `until` is set, exactly).
    messages: usize,
    /// Pause between two messages.
    pause: Duration,
}

/// What a customer did.
struct Streamed {
    name: String,
    base: String,
    token: String,
    tab: Tab,
    /// Bodies acknowledged, in order.
    acked: Vec<String>,
    conversation: String,
    reconnects: usize,
}

/// The highest `seq` this tab has seen (messages and session replays).
fn last_seq(tab: &Tab) -> i64 {
    let mut last = 0;
    for event in &tab.events {
        let Some(arg) = event.args.first() else {
            continue;
        };
        match event.name.as_str() {
            "message" => last = last.max(arg["seq"].as_i64().unwrap_or(0)),
            "session" => {
                for message in arg["messages"].as_array().into_iter().flatten() {
                    last = last.max(message["seq"].as_i64().unwrap_or(0));
                }
            }
            _ => {}
        }
    }
    last
}

/// Connects again through `base` with the customer's token and cursor,
/// until a bridge answers with a session; checks the session resumes
/// `conversation`.
async fn reconnect(base: &str, token: &str, old: &Tab, conversation: &str) -> Tab {
    let since = last_seq(old);
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "no bridge took the customer back"
        );
        if let Ok(mut tab) = Tab::connect(base, json!({ "token": token, "lastSeq": since })).await
            && let Some(session) = tab.next("session").await
        {
            if !conversation.is_empty() {
                assert_eq!(
                    session["conversation"]["id"], conversation,
                    "the customer resumes its conversation"
                );
            }
            return tab;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One customer: registers through `base`, then sends `pace.messages`
/// messages (more, until `until` is set, when given), each waiting for
/// its ack; on a lost connection it reconnects and sends the
/// unacknowledged message again under the same client message id.
async fn stream(
    base: String,
    name: String,
    pace: Pace,
    until: Option<Arc<AtomicBool>>,
    acked_total: Arc<AtomicUsize>,
) -> Streamed {
    let (mut tab, token, _) = register(&base, &name).await;
    let mut acked = Vec::new();
    let mut conversation = String::new();
    let mut reconnects = 0;
    let mut n = 0;
    while n < pace.messages
        || until
            .as_ref()
            .is_some_and(|flag| !flag.load(Ordering::SeqCst))
    {
        let id = format!("{name}-{n}");
        let body = format!("{name} #{n:03}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "{body} was never acknowledged");
            match tab.say(&id, &body).await {
                Ok(ack) if ack["ok"].is_object() => {
                    let in_conversation = ack["ok"]["conversationId"].as_str().unwrap_or_default();
                    if conversation.is_empty() {
                        conversation = in_conversation.to_owned();
                    }
                    assert_eq!(
                        in_conversation, conversation,
                        "one conversation per customer"
                    );
                    break;
                }
                Ok(ack) => {
                    // A retryable refusal (the database busy during a
                    // takeover): the same message again, shortly.
                    assert_eq!(ack["error"]["code"], "internal", "{name}: {ack}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    tab = reconnect(&base, &token, &tab, &conversation).await;
                    reconnects += 1;
                }
            }
        }
        acked.push(body);
        acked_total.fetch_add(1, Ordering::SeqCst);
        n += 1;
        tokio::time::sleep(pace.pause).await;
    }
    Streamed {
        name,
        base,
        token,
        tab,
        acked,
        conversation,
        reconnects,
    }
}

/// Three bridges behind nginx (every bridge tells Twilio nginx's URL).
async fn three_behind_nginx(shared: &Shared) -> (Vec<Bridge>, Nginx) {
    let ports = [free_port(), free_port(), free_port()];
    let upstreams: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let nginx =
        tokio::task::spawn_blocking(move || Nginx::start(&upstreams).expect("nginx starts"))
            .await
            .expect("started");
    let mut bridges = Vec::new();
    // One at a time: the first migrates the fresh database.
    for (i, port) in ports.into_iter().enumerate() {
        bridges.push(
            shared
                .bridge_on(&format!("bridge{i}"), port, Some(&nginx.url()))
                .await,
        );
    }
    (bridges, nginx)
}

/// Starts `customers` streaming through `base`.
fn start_streaming(
    base: &str,
    customers: usize,
    pace: Pace,
    until: Option<Arc<AtomicBool>>,
) -> (Vec<tokio::task::JoinHandle<Streamed>>, Arc<AtomicUsize>) {
    let acked = Arc::new(AtomicUsize::new(0));
    let tasks = (0..customers)
        .map(|i| {
            tokio::spawn(stream(
                base.to_owned(),
                format!("c{i:03}"),
                pace,
                until.clone(),
                acked.clone(),
            ))
        })
        .collect();
    (tasks, acked)
}

async fn finish(tasks: Vec<tokio::task::JoinHandle<Streamed>>) -> Vec<Streamed> {
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.expect("the customer's task"));
    }
    done
}

/// Every acknowledged message is in Flex once, in order, and each
/// customer has exactly one Flex conversation.
async fn check_flex(shared: &Shared, streamed: &[Streamed], bridges: &[Bridge]) {
    let expected: usize = streamed.iter().map(|s| s.acked.len()).sum();
    let deadline = Instant::now() + PATIENCE;
    let conversations = loop {
        let conversations = shared.flex_conversations().await;
        let stored: usize = conversations.iter().map(|(_, bodies)| bodies.len()).sum();
        if stored >= expected {
            break conversations;
        }
        if Instant::now() > deadline {
            let short: Vec<String> = streamed
                .iter()
                .filter_map(|customer| {
                    let count = conversations
                        .iter()
                        .filter(|(_, bodies)| {
                            bodies
                                .first()
                                .is_some_and(|b| b.starts_with(&customer.name))
                        })
                        .map(|(_, bodies)| bodies.len())
                        .sum::<usize>();
                    (count < customer.acked.len())
                        .then(|| format!("{} {count}/{}", customer.name, customer.acked.len()))
                })
                .collect();
            let logs: Vec<String> = bridges
                .iter()
                .map(|bridge| {
                    let log = bridge.log();
                    let notable: Vec<&str> = log
                        .lines()
                        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                        .take(30)
                        .collect();
                    format!("--- {}:\n{}", bridge.name, notable.join("\n"))
                })
                .collect();
            panic!(
                "{stored} of {expected} acknowledged messages in Flex; short: {short:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut by_customer: HashMap<&str, Vec<&Vec<String>>> = HashMap::new();
    for (_, bodies) in &conversations {
        let owner = bodies
            .first()
            .and_then(|body| body.split(' ').next())
            .unwrap_or_default();
        by_customer.entry(owner).or_default().push(bodies);
    }
    for customer in streamed {
        let theirs = by_customer
            .get(customer.name.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(theirs.len(), 1, "{}: one Flex conversation", customer.name);
        assert_eq!(
            theirs[0], &customer.acked,
            "{}: every acknowledged message once, in order",
            customer.name
        );
    }
    assert_eq!(
        conversations.len(),
        streamed.len(),
        "no conversation opened twice"
    );
}

/// Agents accept every task and answer each customer; each reply reaches
/// its customer once.
async fn check_replies(shared: &Shared, streamed: &mut [Streamed]) {
    let mut accepted = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while accepted.len() < streamed.len() {
        assert!(
            Instant::now() < deadline,
            "not every customer's task was offered to an agent"
        );
        accepted.extend(shared.accept_all().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (agent, task, name) in &accepted {
        shared
            .agent_says(agent, task, &format!("reply to {name}"))
            .await;
    }
    for customer in streamed.iter_mut() {
        let reply = format!("reply to {}", customer.name);
        let mut seen = 0;
        let deadline = Instant::now() + PATIENCE;
        // Like the web chat: a closed connection (its bridge restarted
        // after this customer's last message) reconnects, and the reply
        // comes in the session's replay.
        while seen == 0 {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{reply} never arrived"));
            match tokio::time::timeout(left, customer.tab.client.next_event()).await {
                Ok(Some(event)) => {
                    seen += sightings(&event, &reply, &customer.conversation);
                    customer.tab.events.push(event);
                }
                Ok(None) => {
                    let tab = reconnect(
                        &customer.base,
                        &customer.token,
                        &customer.tab,
                        &customer.conversation,
                    )
                    .await;
                    seen += tab
                        .events
                        .iter()
                        .map(|event| sightings(event, &reply, &customer.conversation))
                        .sum::<usize>();
                    customer.tab = tab;
                }
                Err(_) => panic!("{reply} never arrived"),
            }
        }
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), customer.tab.client.next_event()).await
        {
            seen += sightings(&event, &reply, &customer.conversation);
            customer.tab.events.push(event);
        }
        assert_eq!(seen, 1, "{reply} arrives once");
    }
}

/// How often `event` shows the agent's message `body` in `conversation`
/// (live, or in a session's replay).
fn sightings(event: &flexbridge_bench::sio::ServerEvent, body: &str, conversation: &str) -> usize {
    let Some(arg) = event.args.first() else {
        return 0;
    };
    let matches = |message: &serde_json::Value| {
        message["body"] == body
            && message["direction"] == "agent"
            && message["conversationId"] == conversation
    };
    match event.name.as_str() {
        "message" => usize::from(matches(arg)),
        "session" => arg["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|message| matches(message))
            .count(),
        _ => 0,
    }
}

/// Conversations whose lease the bridge with process id `pid` holds.
async fn leases_of(pool: &sqlx::PgPool, pid: u32) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM conversations WHERE lease_owner LIKE $1")
        .bind(format!("%-{pid}-%"))
        .fetch_all(pool)
        .await
        .expect("the leases read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_mid_stream_loses_nothing_acknowledged_and_its_work_is_taken_over() {
    let shared = shared(4, 30).await;
    let (mut bridges, nginx) = three_behind_nginx(&shared).await;
    let pool = sqlx::PgPool::connect(shared.database.url())
        .await
        .expect("the database");
    let pace = Pace {
        messages: 20,
        pause: Duration::from_millis(20),
    };
    let (tasks, acked) = start_streaming(&nginx.url(), 100, pace, None);
    wait_for("a third of the messages are acknowledged", || async {
        (acked.load(Ordering::SeqCst) >= 600).then_some(())
    })
    .await;
    let victim = &mut bridges[1];
    let pid = victim
        .child
        .as_ref()
        .and_then(|child| child.id())
        .expect("a pid");
    victim.kill().await;
    let held = leases_of(&pool, pid).await;
    let mut streamed = finish(tasks).await;
    check_flex(&shared, &streamed, &bridges).await;
    let reconnects: usize = streamed.iter().map(|s| s.reconnects).sum();
    assert!(reconnects > 0, "the killed bridge's customers reconnected");
    assert!(
        leases_of(&pool, pid).await.is_empty(),
        "nothing is left under the killed bridge's lease"
    );
    if !held.is_empty() {
        let mut takeovers = 0.0;
        for bridge in [&bridges[0], &bridges[2]] {
            takeovers += bridge
                .metric(&shared.http, "flexbridge_outbox_takeovers_total")
                .await;
        }
        assert!(
            takeovers >= 1.0,
            "the {} conversations the killed bridge held were taken over",
            held.len()
        );
    }
    check_replies(&shared, &mut streamed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_nothing_acknowledged_and_customers_resume() {
    let shared = shared(2, 30).await;
    let (mut bridges, nginx) = three_behind_nginx(&shared).await;
    let restarted = Arc::new(AtomicBool::new(false));
    let pace = Pace {
        messages: 5,
        pause: Duration::from_millis(100),
    };
    let (tasks, acked) = start_streaming(&nginx.url(), 30, pace, Some(restarted.clone()));
    wait_for("the customers are streaming", || async {
        (acked.load(Ordering::SeqCst) >= 60).then_some(())
    })
    .await;
    for bridge in &mut bridges {
        let before = acked.load(Ordering::SeqCst);
        let status = bridge.terminate().await;
        assert!(status.success(), "{} stopped cleanly", bridge.name);
        *bridge = shared
            .bridge_on(&bridge.name.clone(), bridge.port, Some(&nginx.url()))
            .await;
        wait_for("the customers stream on", || async {
            (acked.load(Ordering::SeqCst) >= before + 30).then_some(())
        })
        .await;
    }
    restarted.store(true, Ordering::SeqCst);
    let mut streamed = finish(tasks).await;
    check_flex(&shared, &streamed, &bridges).await;
    let reconnects: usize = streamed.iter().map(|s| s.reconnects).sum();
    assert!(
        reconnects > 0,
        "closed sockets reconnected to the other bridges"
    );
    check_replies(&shared, &mut streamed).await;
}

//! The floor relay against a real emulator (in-process, port 0), driven by
//! the load generator's own client, on each backend: customer messages land
//! in Flex exactly once, the agent's reply reaches the customer's socket,
//! and the observer sees each stored message with the emulator's store
//! stamp and each webhook with its send stamp.

use std::time::Duration;

use flex_emulator::{Emulator as FlexEmulator, EmulatorConfig};
use flexbridge_bench::cli::Backend;
use flexbridge_bench::customer::{Customer, MessageIn};
use flexbridge_bench::emulator::{Emulator, Observer};
use flexbridge_bench::floor;
use flexbridge_bench::twilio::{Account, Twilio, Upstream};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

async fn spawn_emulator(shutdown: &CancellationToken) -> String {
    let emulator = FlexEmulator::new(EmulatorConfig::from_seed(11).with_agents(1));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.run(listener, shutdown.clone()));
    url
}

async fn spawn_floor(emulator_url: &str, backend: Backend, shutdown: &CancellationToken) -> String {
    let control = Emulator::new(emulator_url).unwrap();
    let account = Account::from_state(&control.state().await.unwrap()).unwrap();
    let twilio = Twilio::new(emulator_url, &account.account_sid, &account.auth_token).unwrap();
    let upstream = Upstream::prepare(twilio, &account, backend).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(floor::run(listener, Some(upstream), None, shutdown.clone()));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_conversations_customer_messages_land_once_and_the_agent_reply_reaches_the_socket() {
    messages_land_once_and_the_agent_reply_reaches_the_socket(Backend::Conversations).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_chat_customer_messages_land_once_and_the_agent_reply_reaches_the_socket() {
    messages_land_once_and_the_agent_reply_reaches_the_socket(Backend::Chat).await;
}

/// Polls `done` every 20 ms for up to 2 s.
async fn eventually(done: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

async fn messages_land_once_and_the_agent_reply_reaches_the_socket(backend: Backend) {
    let shutdown = CancellationToken::new();
    let emulator_url = spawn_emulator(&shutdown).await;
    let floor_url = spawn_floor(&emulator_url, backend, &shutdown).await;
    let control = Emulator::new(&emulator_url).unwrap();
    let observer = Observer::start(&control).await.unwrap();

    let mut customer = Customer::connect(&floor_url, T).await.unwrap();
    customer.register("Ada").await.unwrap();
    let tokens = ["t-m0", "t-m1", "t-m2"];
    for token in tokens {
        let (accepted, _) = customer
            .send(token, &format!("{token} where is my order?"))
            .await
            .unwrap();
        assert_eq!(accepted.client_message_id, token);
    }

    let wanted: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    assert_eq!(observer.wait_for(&wanted, T).await, 0);
    let stored = control.stored_bodies(backend).await.unwrap();
    for token in tokens {
        assert_eq!(stored.get(token), Some(&1), "{token} stored once");
        assert_eq!(observer.times_seen(token), 1);
        assert!(observer.stored_us(token).is_some(), "{token} has its stamp");
    }
    // Each message's webhook to the floor, stamped when it was sent.
    assert_eq!(observer.wait_for_webhooks(&wanted, T).await, 0);
    for token in tokens {
        let (stored, sent) = (observer.stored_us(token), observer.webhook_sent_us(token));
        assert!(
            stored <= sent,
            "{token}: stored {stored:?}, webhook sent {sent:?}"
        );
    }

    // The agent accepts and replies; the customer's socket gets the reply.
    let agent = control.agent_names().await.unwrap().remove(0);
    let mut work = Vec::new();
    for _ in 0..100 {
        work = control.work(&agent).await.unwrap();
        if !work.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = work.first().expect("the conversation reached the agent");
    control.accept(&agent, &task.reservation_sid).await.unwrap();
    control
        .agent_says(&agent, &task.task_sid, "r-1 happy to help")
        .await
        .unwrap();
    let reply = tokio::time::timeout(T, async {
        loop {
            let event = customer.next_event().await.expect("socket open");
            if event.name != "message" {
                continue;
            }
            let message: MessageIn = serde_json::from_value(event.args[0].clone()).unwrap();
            if message.direction == "agent" {
                return message;
            }
        }
    })
    .await
    .expect("the reply arrived");
    assert_eq!(reply.body, "r-1 happy to help");
    assert!(eventually(|| observer.webhook_sent_us("r-1").is_some()).await);
    assert!(observer.stored_us("r-1") <= observer.webhook_sent_us("r-1"));
    shutdown.cancel();
}

#[tokio::test]
async fn a_message_before_register_is_refused_with_not_registered() {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(floor::run(listener, None, None, shutdown.clone()));
    let customer = Customer::connect(&url, T).await.unwrap();
    let err = customer.send("x-1", "x-1 hello").await.unwrap_err();
    assert!(err.to_string().contains("not_registered"), "{err}");
    shutdown.cancel();
}

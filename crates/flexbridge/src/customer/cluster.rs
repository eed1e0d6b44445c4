//! Rooms across bridges: with `REDIS_URL` set, namespace `/` runs on
//! socketioxide's Redis adapter (the `socketioxide-redis` crate), so an emit
//! to a customer's room on one bridge reaches that customer's sockets on
//! every bridge. The adapter publishes each broadcast on a Redis channel
//! that every bridge subscribes to; each bridge then emits to its own
//! sockets in the room.
//!
//! The adapter talks to Redis through a [`Driver`]; ours, [`RedisFabric`],
//! sits on the `redis` crate's `ConnectionManager`, which reconnects by
//! itself when the connection drops (a restarted Redis) and subscribes to
//! the adapter's channels again. The adapter's own driver keeps one
//! connection and stays deaf after a Redis restart. Pub/sub messages come
//! as RESP3 pushes (Redis 6 or later), so the connection asks for RESP3.
//!
//! A publish that fails (Redis unreachable) is counted in
//! `flexbridge_redis_publish_failures_total` and logged; the fan-out then
//! still reaches this bridge's own sockets (see `SocketFanout`). What other
//! bridges' sockets missed meanwhile they get from the store when they
//! reconnect (`session` replays from the client's `lastSeq`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo as _, ProtocolVersion, PushInfo, PushKind};
use socketioxide::adapter::Emitter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::mpsc;
use url::Url;

use crate::telemetry::families::REDIS_PUBLISH_FAILURES;

/// Namespace `/`'s adapter when several bridges share rooms.
pub type ClusterAdapter = CustomRedisAdapter<Emitter, RedisFabric>;

/// Prefix of the adapter's Redis channels (one deployment per Redis
/// database; another deployment on the same Redis would need its own).
const CHANNEL_PREFIX: &str = "flexbridge";

/// How long one Redis command may take before it counts as failed: a
/// fan-out must not hold up the delivery that caused it for long.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a start waits for Redis.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest pause between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Reconnection attempts after a drop before the manager waits for the
/// next command to try again (about a quarter of an hour at the longest
/// pause).
const RECONNECT_ATTEMPTS: usize = 1_000;

/// Where each subscribed channel's messages go (the adapter's streams).
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// A [`Driver`] on a self-healing Redis connection.
#[derive(Clone)]
pub struct RedisFabric {
    connection: ConnectionManager,
    handlers: Handlers,
}

impl RedisFabric {
    /// Connects to `url` (failing if Redis does not answer now).
    pub async fn connect(url: &Url) -> anyhow::Result<Self> {
        let shown = redact(url);
        let info = url
            .as_str()
            .into_connection_info()
            .with_context(|| format!("reading REDIS_URL {shown}"))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .with_context(|| format!("the Redis client for {shown}"))?;
        let handlers: Handlers = Arc::default();
        let pushes = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                route_push(&pushes, push);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(MAX_RECONNECT_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        // The manager retries a refused first connection too: a bridge
        // whose Redis does not answer at start fails then, saying so.
        let connection = tokio::time::timeout(
            START_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {shown} did not answer within {START_TIMEOUT:?}"))?
        .with_context(|| format!("connecting to Redis at {shown}"))?;
        Ok(Self {
            connection,
            handlers,
        })
    }

    /// The adapter's constructor state on this connection.
    pub fn adapter(self) -> RedisAdapterCtr<Self> {
        let config = RedisAdapterConfig::new()
            .with_prefix(CHANNEL_PREFIX)
            .with_request_timeout(RESPONSE_TIMEOUT);
        RedisAdapterCtr::new_with_driver(self, config)
    }

    /// Whether Redis answers a `PING` now (`/readyz`, `doctor`).
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }
}

/// Hands a published message to the stream of its channel.
fn route_push(handlers: &Handlers, push: PushInfo) {
    match push.kind {
        PushKind::Message => {}
        PushKind::Disconnection => {
            tracing::warn!(
                "lost the connection to Redis; reconnecting (fan-out to other bridges pauses meanwhile)"
            );
            return;
        }
        _ => return,
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        redis::from_redis_value::<String>(channel),
        redis::from_redis_value::<Vec<u8>>(payload),
    ) else {
        tracing::warn!("an unreadable message from Redis pub/sub");
        return;
    };
    let handlers = handlers
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(stream) = handlers.get(&channel)
        && stream.try_send((channel.clone(), payload)).is_err()
    {
        tracing::warn!(
            channel,
            "fan-out from Redis dropped: this bridge is not keeping up"
        );
    }
}

impl Driver for RedisFabric {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let mut connection = self.connection.clone();
        let published = redis::cmd("PUBLISH")
            .arg(&chan)
            .arg(val)
            .query_async::<i64>(&mut connection)
            .await;
        if let Err(error) = &published {
            metrics::counter!(REDIS_PUBLISH_FAILURES).increment(1);
            tracing::warn!(channel = chan, %error, "publishing a fan-out to Redis failed");
        }
        published.map(drop)
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(chan.clone(), tx);
        let mut connection = self.connection.clone();
        if let Err(error) = connection.subscribe(&chan).await {
            self.handlers
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&chan);
            return Err(error);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&chan);
        let mut connection = self.connection.clone();
        connection.unsubscribe(&chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let mut connection = self.connection.clone();
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

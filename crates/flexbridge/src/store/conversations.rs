//! `conversations`: every statement on the table. A change of state is
//! `apply`: one `UPDATE … WHERE state IN (…)` whose condition is built
//! from the state machine ([`ConversationState::sources_of`]), so a
//! repeated event cannot apply twice and no state is spelled in SQL here
//! but through `ConversationState::as_str`.

use std::sync::LazyLock;

use super::{Conn, Store, StoreError, StoreResult, corrupt, dialect, outbox, receipts, sql};
use crate::core::backend::{BackendName, FlexRef, Opened};
use crate::core::conversation::{CloseReason, ConversationState, Transition};
use crate::core::ids::{ConversationId, CustomerId, RemoteChannel};
use crate::core::model::ConversationRecord;
use crate::core::storage::{EventKey, Inbound};
use crate::core::work::JobKind;

/// The `conversations` table.
#[derive(Clone, Copy)]
pub struct Conversations<'a> {
    pub(super) store: &'a Store,
}

/// The columns a [`ConversationRow`] reads.
pub(super) const COLUMNS: &str =
    "id, customer_id, state, backend, flex_channel, flex_ref, agent_name, close_reason, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct ConversationRow {
    id: String,
    customer_id: String,
    state: String,
    backend: String,
    flex_channel: Option<String>,
    flex_ref: Option<String>,
    agent_name: Option<String>,
    close_reason: Option<String>,
    created_at: i64,
}

impl TryFrom<ConversationRow> for ConversationRecord {
    type Error = StoreError;

    fn try_from(row: ConversationRow) -> StoreResult<Self> {
        Ok(Self {
            id: ConversationId::parse(&row.id).map_err(|e| corrupt("conversations.id", e))?,
            customer_id: CustomerId::parse(&row.customer_id)
                .map_err(|e| corrupt("conversations.customer_id", e))?,
            state: parse_state(&row.state)?,
            backend: BackendName::new(row.backend),
            flex_channel: row.flex_channel.map(RemoteChannel::new),
            flex_ref: parse_flex_ref(row.flex_ref.as_deref())?,
            agent_name: row.agent_name,
            close_reason: row
                .close_reason
                .map(|raw| {
                    CloseReason::parse(&raw)
                        .ok_or_else(|| corrupt("conversations.close_reason", raw))
                })
                .transpose()?,
            created_at: row.created_at,
        })
    }
}

pub(super) fn parse_state(raw: &str) -> StoreResult<ConversationState> {
    ConversationState::parse(raw).ok_or_else(|| corrupt("conversations.state", raw))
}

pub(super) fn parse_flex_ref(raw: Option<&str>) -> StoreResult<Option<FlexRef>> {
    raw.map(|text| FlexRef::parse(text).map_err(|e| corrupt("conversations.flex_ref", e)))
        .transpose()
}

/// `state IN ('…', …)` for `states` (a column name may be qualified).
fn state_in(column: &str, states: &[ConversationState]) -> String {
    let list: Vec<String> = states.iter().map(|s| format!("'{s}'")).collect();
    format!("{column} IN ({})", list.join(", "))
}

/// The condition "`alias`'s conversation is live" (not closed).
pub(super) fn live(alias: &str) -> String {
    let live: Vec<ConversationState> = ConversationState::ALL
        .into_iter()
        .filter(|s| s.is_live())
        .collect();
    state_in(&format!("{alias}.state"), &live)
}

/// Which conversation a change applies to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Which<'a> {
    Id(&'a ConversationId),
    /// The customer's live conversation.
    LiveOf(&'a CustomerId),
}

/// A change of state and what it records.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change<'a> {
    /// Flex has the channel.
    Opened(&'a Opened),
    Closed(CloseReason),
}

impl Change<'_> {
    fn transition(self) -> Transition {
        match self {
            Self::Opened(_) => Transition::Opened,
            Self::Closed(reason) => Transition::Closed(reason),
        }
    }
}

/// The UPDATE of `apply`, for one target and one transition.
fn apply_sql(which: &str, transition: Transition) -> String {
    format!(
        "UPDATE conversations SET state = $1, close_reason = COALESCE($2, close_reason),
                flex_channel = COALESCE($3, flex_channel), flex_ref = COALESCE($4, flex_ref),
                updated_at = $5
         WHERE {which} AND {sources} RETURNING {COLUMNS}",
        sources = state_in("state", ConversationState::sources_of(transition)),
    )
}

static OPEN_BY_ID: LazyLock<String> = LazyLock::new(|| apply_sql("id = $6", Transition::Opened));
static CLOSE_BY_ID: LazyLock<String> =
    LazyLock::new(|| apply_sql("id = $6", Transition::Closed(CloseReason::AgentEnded)));
static CLOSE_LIVE_OF: LazyLock<String> = LazyLock::new(|| {
    apply_sql(
        "customer_id = $6",
        Transition::Closed(CloseReason::CustomerEnded),
    )
});

/// Applies `change` to the conversation `which` names, if the state
/// machine allows it from its state: the conversation as changed, or
/// `None` (and nothing written) when it does not.
pub(super) async fn apply(
    conn: &mut Conn<'_>,
    which: Which<'_>,
    change: Change<'_>,
    now: i64,
) -> StoreResult<Option<ConversationRecord>> {
    let transition = change.transition();
    let (sql, target) = match (which, transition) {
        (Which::Id(id), Transition::Opened) => (&*OPEN_BY_ID, id.as_str()),
        (Which::Id(id), Transition::Closed(_)) => (&*CLOSE_BY_ID, id.as_str()),
        (Which::LiveOf(customer), Transition::Closed(_)) => (&*CLOSE_LIVE_OF, customer.as_str()),
        (Which::LiveOf(_), Transition::Opened) => {
            return Err(StoreError::Corrupt(
                "a conversation opens by its id, never as a customer's live one".into(),
            ));
        }
    };
    let (reason, opened) = match change {
        Change::Opened(opened) => (None, Some(opened)),
        Change::Closed(reason) => (Some(reason.as_str()), None),
    };
    let row: Option<ConversationRow> = sql::query_as(sql.as_str())
        .bind(transition.target().as_str())
        .bind(reason)
        .bind(opened.map(|o| o.channel.as_str()))
        .bind(
            opened
                .and_then(|o| o.flex_ref.as_ref())
                .map(FlexRef::to_text),
        )
        .bind(now)
        .bind(target)
        .fetch_optional(conn)
        .await?;
    row.map(ConversationRecord::try_from).transpose()
}

/// Inserts the customer's new conversation, `opening` with `backend`.
pub(super) async fn insert_opening(
    conn: &mut Conn<'_>,
    customer: &CustomerId,
    backend: &BackendName,
    now: i64,
) -> StoreResult<ConversationRecord> {
    let conversation = ConversationRecord {
        id: ConversationId::generate(),
        customer_id: customer.clone(),
        state: ConversationState::Opening,
        backend: backend.clone(),
        flex_channel: None,
        flex_ref: None,
        agent_name: None,
        close_reason: None,
        created_at: now,
    };
    sql::query(
        "INSERT INTO conversations (id, customer_id, backend, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(conversation.id.as_str())
    .bind(customer.as_str())
    .bind(backend.as_str())
    .bind(conversation.state.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(conversation)
}

/// Records the channel of a conversation the customer ended before Flex
/// had it: it stays closed, but its queued messages and its "close" job
/// still need the channel. No state changes.
pub(super) async fn record_channel_of_closed(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    opened: &Opened,
    now: i64,
) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE conversations SET flex_channel = $1, flex_ref = $2, updated_at = $3
             WHERE id = $4 AND state = '{}' AND flex_channel IS NULL",
            ConversationState::Closed
        )
    });
    sql::query(SQL.as_str())
        .bind(opened.channel.as_str())
        .bind(opened.flex_ref.as_ref().map(FlexRef::to_text))
        .bind(now)
        .bind(conversation.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest conversation of a Flex channel (Flex may hand one channel
/// to several conversations of one customer in turn).
pub(super) async fn newest_of_channel(
    conn: &mut Conn<'_>,
    channel: &RemoteChannel,
) -> StoreResult<Option<ConversationRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM conversations WHERE flex_channel = $1
             ORDER BY created_at DESC LIMIT 1"
        )
    });
    let row: Option<ConversationRow> = sql::query_as(SQL.as_str())
        .bind(channel.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(ConversationRecord::try_from).transpose()
}

/// Whether any conversation has `channel`.
pub(super) async fn has_channel(conn: &mut Conn<'_>, channel: &RemoteChannel) -> StoreResult<bool> {
    Ok(sql::query_scalar::<bool>(
        "SELECT EXISTS (SELECT 1 FROM conversations WHERE flex_channel = $1)",
    )
    .bind(channel.as_str())
    .fetch_one(conn)
    .await?)
}

impl Conversations<'_> {
    /// The customer's live conversation, else the most recent closed one.
    pub async fn latest_of(self, customer: &CustomerId) -> StoreResult<Option<ConversationRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM conversations WHERE customer_id = $1
                 ORDER BY CASE WHEN {} THEN 0 ELSE 1 END, created_at DESC LIMIT 1",
                live("conversations")
            )
        });
        let row: Option<ConversationRow> = sql::query_as(SQL.as_str())
            .bind(customer.as_str())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(ConversationRecord::try_from).transpose()
    }

    /// How many conversations are live (opening or open).
    pub async fn count_live(self) -> StoreResult<i64> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT COUNT(*) FROM conversations WHERE {}",
                live("conversations")
            )
        });
        Ok(sql::query_scalar(SQL.as_str())
            .fetch_one(self.store.reader())
            .await?)
    }

    pub async fn get(self, id: &ConversationId) -> StoreResult<Option<ConversationRecord>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {COLUMNS} FROM conversations WHERE id = $1"));
        let row: Option<ConversationRow> = sql::query_as(SQL.as_str())
            .bind(id.as_str())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(ConversationRecord::try_from).transpose()
    }

    /// The customer ends their live conversation: it closes now
    /// (`customer_ended`; their next message opens a new one) and a
    /// "close" job is queued behind the jobs it has, so what they sent
    /// before still reaches Flex first, in order. `None`, and nothing
    /// written, when they have no live conversation.
    pub async fn end_by_customer(
        self,
        customer: &CustomerId,
        now: i64,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.store
            .write((customer.clone(), now), |(customer, now), conn| {
                Box::pin(async move {
                    dialect::lock_customer(conn, customer).await?;
                    let change = Change::Closed(CloseReason::CustomerEnded);
                    let closed = apply(conn, Which::LiveOf(customer), change, *now).await?;
                    if let Some(conversation) = &closed {
                        outbox::queue(conn, &conversation.id, JobKind::CLOSE, None, *now).await?;
                    }
                    Ok(closed)
                })
            })
            .await
    }

    /// Records that an agent joined the channel (the conversation's agent).
    pub async fn agent_joined(
        self,
        key: EventKey,
        agent_name: &str,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        self.store
            .write((key, agent_name.to_owned()), |(key, agent_name), conn| {
                Box::pin(async move {
                    let mut conversation = match claim(conn, key).await? {
                        Ok(conversation) => conversation,
                        Err(done) => return Ok(done),
                    };
                    if conversation.agent_name.as_deref() == Some(agent_name.as_str()) {
                        return Ok(Inbound::Duplicate);
                    }
                    sql::query(
                        "UPDATE conversations SET agent_name = $1, updated_at = $2 WHERE id = $3",
                    )
                    .bind(agent_name)
                    .bind(key.now)
                    .bind(conversation.id.as_str())
                    .execute(&mut *conn)
                    .await?;
                    conversation.agent_name = Some(agent_name.clone());
                    Ok(Inbound::Applied(conversation))
                })
            })
            .await
    }

    /// Closes the channel's conversation (once).
    pub async fn end_by_channel(
        self,
        key: EventKey,
        reason: CloseReason,
    ) -> StoreResult<Inbound<ConversationRecord>> {
        self.store
            .write((key, reason), |(key, reason), conn| {
                Box::pin(async move {
                    let conversation = match claim(conn, key).await? {
                        Ok(conversation) => conversation,
                        Err(done) => return Ok(done),
                    };
                    let which = Which::Id(&conversation.id);
                    let closed = apply(conn, which, Change::Closed(*reason), key.now).await?;
                    Ok(closed.map_or(Inbound::Duplicate, Inbound::Applied))
                })
            })
            .await
    }

    /// Moves the conversations that have not reached Flex yet — `opening`,
    /// with an "open" job never attempted — from another backend to
    /// `current` (FLEX_BACKEND changed): nothing of them exists in Flex, so
    /// they open with the configured backend. Those whose opening was
    /// attempted stay with their backend, which may have made something;
    /// so do those another bridge's delivery holds at `now` (it may be
    /// making its first attempt: the lease is the per-conversation claim
    /// that keeps two bridges starting together from both deciding).
    pub async fn adopt_unopened(self, current: &BackendName, now: i64) -> StoreResult<u64> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE conversations SET backend = $1
                 WHERE state = '{}' AND backend <> $1
                   AND (lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at <= $3)
                   AND NOT EXISTS (SELECT 1 FROM outbox o
                                   WHERE o.conversation_id = conversations.id
                                     AND o.kind = '{}' AND o.attempts > 0)",
                ConversationState::Opening,
                JobKind::OPEN,
            )
        });
        let adoption = (current.clone(), self.store.holder.owner.clone(), now);
        self.store
            .write(adoption, |(current, owner, now), conn| {
                Box::pin(async move {
                    Ok(sql::query(SQL.as_str())
                        .bind(current.as_str())
                        .bind(&**owner)
                        .bind(*now)
                        .execute(conn)
                        .await?
                        .rows_affected())
                })
            })
            .await
    }
}

/// The first step of every inbound event but an agent message, inside its
/// group commit: finds the channel's (newest) conversation, then claims
/// the event's idempotency key. Writes nothing for an unknown channel (so
/// a later retry is judged afresh) or a key already claimed. A change the
/// state already holds (the same agent, a conversation already closed)
/// keeps its claimed key: that event counts as applied.
async fn claim(
    conn: &mut Conn<'_>,
    key: &EventKey,
) -> StoreResult<Result<ConversationRecord, Inbound<ConversationRecord>>> {
    let Some(conversation) = newest_of_channel(&mut *conn, &key.channel).await? else {
        return Ok(Err(Inbound::UnknownChannel));
    };
    if !receipts::claim(conn, &conversation.id, key).await? {
        return Ok(Err(Inbound::Duplicate));
    }
    Ok(Ok(conversation))
}

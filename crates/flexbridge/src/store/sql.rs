//! How the store runs a statement, on SQLite or on PostgreSQL, with one
//! text and one call: `sql::query(SQL).bind(a).bind(b).execute(conn)`,
//! `sql::query_as::<Row>(SQL)…fetch_optional(pool)`. Every table's
//! statements are written once against this module; which database runs
//! them is the connection's or the pool's variant.
//!
//! Why not sqlx's `Any` driver: it converts every row into its own
//! values before decoding them (a copy of each text column) and keeps the
//! driver behind a trait object. Here the arguments wait in a small list
//! of borrowed values until the statement runs, then are bound into the
//! driver's own query, and rows are decoded by each driver's `FromRow`
//! directly: the SQLite path costs one `match` more than sqlx alone. Why
//! not generic functions over `sqlx::Database`: every statement would
//! carry the same dozen `where` bounds (Rust does not imply them), and the
//! group commit's write functions would have to be written per database.
//!
//! What differs between the databases beyond running a statement (setup,
//! how a write transaction begins, migrations, locks) is in `dialect`.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{
    Decode, FromRow, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Type,
};

/// A pool of connections to one of the databases.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Closes every connection (waiting for those in use).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A connection inside a write transaction (the group commit's).
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// Where a statement runs: a transaction's connection, or any connection
/// of a pool (a read).
pub enum On<'e> {
    Sqlite(&'e mut SqliteConnection),
    Postgres(&'e mut PgConnection),
    SqlitePool(&'e SqlitePool),
    PgPool(&'e PgPool),
}

impl<'e> From<&'e mut Conn<'_>> for On<'e> {
    fn from(conn: &'e mut Conn<'_>) -> Self {
        match conn {
            Conn::Sqlite(conn) => On::Sqlite(conn),
            Conn::Postgres(conn) => On::Postgres(conn),
        }
    }
}

impl<'e> From<&'e Pool> for On<'e> {
    fn from(pool: &'e Pool) -> Self {
        match pool {
            Pool::Sqlite(pool) => On::SqlitePool(pool),
            Pool::Postgres(pool) => On::PgPool(pool),
        }
    }
}

/// A value bound to a `$N` placeholder: the store's column types
/// (integers, text, bytes), each nullable.
#[derive(Debug, Clone)]
pub enum Arg<'q> {
    Int(Option<i64>),
    Text(Option<&'q str>),
    String(Option<String>),
    Bytes(Option<&'q [u8]>),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<&i64> for Arg<'_> {
    fn from(value: &i64) -> Self {
        Self::Int(Some(*value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl<'q> From<&'q str> for Arg<'q> {
    fn from(value: &'q str) -> Self {
        Self::Text(Some(value))
    }
}

impl<'q> From<&'q String> for Arg<'q> {
    fn from(value: &'q String) -> Self {
        Self::Text(Some(value))
    }
}

impl<'q> From<Option<&'q str>> for Arg<'q> {
    fn from(value: Option<&'q str>) -> Self {
        Self::Text(value)
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Self::String(Some(value))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        Self::String(value)
    }
}

impl<'q> From<&'q [u8]> for Arg<'q> {
    fn from(value: &'q [u8]) -> Self {
        Self::Bytes(Some(value))
    }
}

impl<'q> From<Option<&'q [u8]>> for Arg<'q> {
    fn from(value: Option<&'q [u8]>) -> Self {
        Self::Bytes(value)
    }
}

/// A row type both drivers decode (`#[derive(sqlx::FromRow)]` gives both).
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A single column's type both drivers decode.
pub trait Scalar:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
{
}

impl<T> Scalar for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + Send
        + Unpin
{
}

/// Binds `args` into a driver's query (any of sqlx's query kinds).
macro_rules! bound {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(value) => query.bind(value),
                Arg::Text(value) => query.bind(value),
                Arg::String(value) => query.bind(value),
                Arg::Bytes(value) => query.bind(value),
            };
        }
        query
    }};
}

/// Most statements bind at most this many values.
const ARGS: usize = 8;

/// A statement whose result is how many rows it changed.
#[must_use = "a statement does nothing until it is executed"]
pub struct Query<'q> {
    sql: &'static str,
    args: Vec<Arg<'q>>,
}

/// What an executed statement did.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(self) -> u64 {
        self.rows_affected
    }
}

/// `sql`, to bind and execute.
pub fn query<'q>(sql: &'static str) -> Query<'q> {
    Query {
        sql,
        args: Vec::with_capacity(ARGS),
    }
}

impl<'q> Query<'q> {
    pub fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.args.push(value.into());
        self
    }

    pub async fn execute<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<Done> {
        let rows_affected = match on.into() {
            On::Sqlite(conn) => bound!(sqlx::query::<Sqlite>(self.sql), self.args)
                .execute(conn)
                .await?
                .rows_affected(),
            On::SqlitePool(pool) => bound!(sqlx::query::<Sqlite>(self.sql), self.args)
                .execute(pool)
                .await?
                .rows_affected(),
            On::Postgres(conn) => bound!(sqlx::query::<Postgres>(self.sql), self.args)
                .execute(conn)
                .await?
                .rows_affected(),
            On::PgPool(pool) => bound!(sqlx::query::<Postgres>(self.sql), self.args)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(Done { rows_affected })
    }
}

/// A statement whose rows decode into `R`.
#[must_use = "a statement does nothing until it is fetched"]
pub struct QueryAs<'q, R> {
    query: Query<'q>,
    row: std::marker::PhantomData<fn() -> R>,
}

/// `sql`, whose rows are `R`s.
pub fn query_as<'q, R: Row>(sql: &'static str) -> QueryAs<'q, R> {
    QueryAs {
        query: query(sql),
        row: std::marker::PhantomData,
    }
}

/// Runs `$fetch` of a `query_as`-like query on whichever database `$on` is.
macro_rules! fetch {
    ($make:ident, $sql:expr, $args:expr, $on:expr, $fetch:ident) => {
        match $on.into() {
            On::Sqlite(conn) => {
                bound!(sqlx::$make::<Sqlite, _>($sql), $args)
                    .$fetch(conn)
                    .await
            }
            On::SqlitePool(pool) => {
                bound!(sqlx::$make::<Sqlite, _>($sql), $args)
                    .$fetch(pool)
                    .await
            }
            On::Postgres(conn) => {
                bound!(sqlx::$make::<Postgres, _>($sql), $args)
                    .$fetch(conn)
                    .await
            }
            On::PgPool(pool) => {
                bound!(sqlx::$make::<Postgres, _>($sql), $args)
                    .$fetch(pool)
                    .await
            }
        }
    };
}

impl<'q, R: Row> QueryAs<'q, R> {
    pub fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    pub async fn fetch_optional<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<Option<R>> {
        fetch!(
            query_as,
            self.query.sql,
            self.query.args,
            on,
            fetch_optional
        )
    }

    pub async fn fetch_all<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<Vec<R>> {
        fetch!(query_as, self.query.sql, self.query.args, on, fetch_all)
    }
}

/// A statement whose rows are one column of `T`.
#[must_use = "a statement does nothing until it is fetched"]
pub struct QueryScalar<'q, T> {
    query: Query<'q>,
    value: std::marker::PhantomData<fn() -> T>,
}

/// `sql`, whose rows are one `T` each.
pub fn query_scalar<'q, T: Scalar>(sql: &'static str) -> QueryScalar<'q, T> {
    QueryScalar {
        query: query(sql),
        value: std::marker::PhantomData,
    }
}

impl<'q, T: Scalar> QueryScalar<'q, T> {
    pub fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    pub async fn fetch_one<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<T> {
        fetch!(query_scalar, self.query.sql, self.query.args, on, fetch_one)
    }

    pub async fn fetch_optional<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<Option<T>> {
        fetch!(
            query_scalar,
            self.query.sql,
            self.query.args,
            on,
            fetch_optional
        )
    }

    pub async fn fetch_all<'e>(self, on: impl Into<On<'e>>) -> sqlx::Result<Vec<T>> {
        fetch!(query_scalar, self.query.sql, self.query.args, on, fetch_all)
    }
}

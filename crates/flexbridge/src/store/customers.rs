//! `customers`: the identities the bridge issues. Only a SHA-256 of each
//! resume token is stored; lookups go by that hash and the match is
//! re-checked in constant time. Each customer's `last_seq` counts their
//! messages; `advance_seq` is the one statement that moves it. Bridges
//! sharing the database keep each customer's rate-limit bucket in their
//! row (`take_rate_token`, in the write that accepts a message).

use super::{Conn, Store, StoreError, StoreResult, corrupt, sql};
use crate::core::ids::{CustomerId, CustomerName, Seq, TokenHash};
use crate::core::model::CustomerRecord;
use crate::core::pre_engagement::PreEngagement;
use crate::core::rate_limit::{Bucket, RateLimit};

/// The `customers` table.
#[derive(Clone, Copy)]
pub struct Customers<'a> {
    pub(super) store: &'a Store,
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    name: String,
    token_hash: Vec<u8>,
    pre_engagement: Option<String>,
}

impl TryFrom<CustomerRow> for CustomerRecord {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> StoreResult<Self> {
        Ok(Self {
            id: CustomerId::parse(&row.id).map_err(|e| corrupt("customers.id", e))?,
            name: row.name,
            token_hash: TokenHash::from_bytes(&row.token_hash)
                .ok_or_else(|| corrupt("customers.token_hash", "not 32 bytes"))?,
            pre_engagement: row
                .pre_engagement
                .map(|text| {
                    PreEngagement::parse(&text).map_err(|e| corrupt("customers.pre_engagement", e))
                })
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl Customers<'_> {
    pub async fn create(
        self,
        id: &CustomerId,
        name: &CustomerName,
        token_hash: &TokenHash,
        pre_engagement: &PreEngagement,
        now: i64,
    ) -> StoreResult<CustomerRecord> {
        let customer = CustomerRecord {
            id: id.clone(),
            name: name.as_str().to_owned(),
            token_hash: token_hash.clone(),
            pre_engagement: pre_engagement.clone(),
        };
        self.store
            .write((customer, now), |(customer, now), conn| {
                Box::pin(async move {
                    sql::query(
                        "INSERT INTO customers (id, name, token_hash, last_seq, pre_engagement, created_at)
                         VALUES ($1, $2, $3, 0, $4, $5)",
                    )
                    .bind(customer.id.as_str())
                    .bind(&customer.name)
                    .bind(customer.token_hash.as_bytes())
                    .bind(
                        (!customer.pre_engagement.is_empty())
                            .then(|| customer.pre_engagement.to_text()),
                    )
                    .bind(now)
                    .execute(conn)
                    .await?;
                    Ok(customer.clone())
                })
            })
            .await
    }

    /// The customer whose resume token hashes to `hash`, if any.
    pub async fn by_token(self, hash: &TokenHash) -> StoreResult<Option<CustomerRecord>> {
        let row: Option<CustomerRow> = sql::query_as(
            "SELECT id, name, token_hash, pre_engagement FROM customers WHERE token_hash = $1",
        )
        .bind(hash.as_bytes())
        .fetch_optional(self.store.reader())
        .await?;
        let Some(customer) = row.map(CustomerRecord::try_from).transpose()? else {
            return Ok(None);
        };
        Ok(customer.token_hash.matches(hash).then_some(customer))
    }

    pub async fn get(self, id: &CustomerId) -> StoreResult<Option<CustomerRecord>> {
        let row: Option<CustomerRow> = sql::query_as(
            "SELECT id, name, token_hash, pre_engagement FROM customers WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(self.store.reader())
        .await?;
        row.map(CustomerRecord::try_from).transpose()
    }
}

/// Records that `customer`'s newest message has `seq` (inside the write
/// that inserted it with `last_seq + 1`): a `seq` is never given twice.
pub(super) async fn advance_seq(conn: &mut Conn<'_>, customer: &str, seq: Seq) -> StoreResult<()> {
    sql::query("UPDATE customers SET last_seq = $1 WHERE id = $2")
        .bind(seq.0)
        .bind(customer)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes one token of `customer`'s bucket under `limit` at `now`, inside
/// the write that accepts their message (after its row lock: two bridges
/// take from one bucket in turn); whether there was one.
pub(super) async fn take_rate_token(
    conn: &mut Conn<'_>,
    customer: &CustomerId,
    limit: RateLimit,
    now: i64,
) -> StoreResult<bool> {
    let row: Option<(Option<i64>, Option<i64>)> =
        sql::query_as("SELECT rate_tokens_milli, rate_counted_at FROM customers WHERE id = $1")
            .bind(customer.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let bucket = row
        .and_then(|(tokens, at)| tokens.zip(at))
        .map(|(milli, updated)| Bucket {
            tokens: milli as f64 / 1000.0,
            updated,
        });
    let (taken, after) = limit.take(bucket, now);
    sql::query("UPDATE customers SET rate_tokens_milli = $1, rate_counted_at = $2 WHERE id = $3")
        // Rounded down: a bucket never holds more than it was given.
        .bind((after.tokens * 1000.0).floor() as i64)
        .bind(after.updated)
        .bind(customer.as_str())
        .execute(conn)
        .await?;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::ResumeToken;
    use crate::store::test_support::{TestDb, on_both_databases, temp_store};

    on_both_databases!(a_customer_is_found_by_the_hash_of_its_token_only,);

    async fn a_customer_is_found_by_the_hash_of_its_token_only(db: TestDb) {
        let (store, _dir) = temp_store(db).await;
        let token = ResumeToken::generate();
        let id = CustomerId::generate();
        let name = CustomerName::parse("Ada").unwrap();
        store
            .customers()
            .create(&id, &name, &token.hash(), &PreEngagement::default(), 1)
            .await
            .unwrap();

        let found = store.customers().by_token(&token.hash()).await.unwrap();
        assert_eq!(found.map(|c| c.id), Some(id.clone()));
        let other = ResumeToken::generate();
        assert_eq!(
            store.customers().by_token(&other.hash()).await.unwrap(),
            None
        );
        assert_eq!(
            store.customers().get(&id).await.unwrap().unwrap().name,
            "Ada"
        );
    }
}

//! Customers: the identities the bridge issues. Only a SHA-256 of each
//! resume token is stored; lookups go by that hash and the match is
//! re-checked in constant time.

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{Store, StoreError, StoreResult, parse_id};
use crate::core::ids::{CustomerId, CustomerName, TokenHash};

/// A stored customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub name: String,
    pub token_hash: TokenHash,
}

impl CustomerRecord {
    fn from_row(row: &SqliteRow) -> StoreResult<Self> {
        let hash: &[u8] = row.try_get("token_hash")?;
        Ok(Self {
            id: parse_id(row, "id", CustomerId::parse)?,
            name: row.try_get("name")?,
            token_hash: TokenHash::from_bytes(hash)
                .ok_or_else(|| StoreError::Corrupt("token_hash is not 32 bytes".into()))?,
        })
    }
}

impl Store {
    pub async fn create_customer(
        &self,
        id: &CustomerId,
        name: &CustomerName,
        token_hash: &TokenHash,
        now: i64,
    ) -> StoreResult<CustomerRecord> {
        let customer = CustomerRecord {
            id: id.clone(),
            name: name.as_str().to_owned(),
            token_hash: token_hash.clone(),
        };
        self.write((customer, now), |(customer, now), conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO customers (id, name, token_hash, last_seq, created_at)
                     VALUES (?, ?, ?, 0, ?)",
                )
                .bind(customer.id.as_str())
                .bind(&customer.name)
                .bind(customer.token_hash.as_bytes())
                .bind(now)
                .execute(conn)
                .await?;
                Ok(customer.clone())
            })
        })
        .await
    }

    /// The customer whose resume token hashes to `hash`, if any.
    pub async fn customer_by_token(&self, hash: &TokenHash) -> StoreResult<Option<CustomerRecord>> {
        let row = sqlx::query("SELECT id, name, token_hash FROM customers WHERE token_hash = ?")
            .bind(hash.as_bytes())
            .fetch_optional(self.reader())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let customer = CustomerRecord::from_row(&row)?;
        Ok(customer.token_hash.matches(hash).then_some(customer))
    }

    pub async fn customer(&self, id: &CustomerId) -> StoreResult<Option<CustomerRecord>> {
        sqlx::query("SELECT id, name, token_hash FROM customers WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(CustomerRecord::from_row)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::ResumeToken;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_customer_is_found_by_the_hash_of_its_token_only() {
        let (store, _dir) = temp_store().await;
        let token = ResumeToken::generate();
        let id = CustomerId::generate();
        let name = CustomerName::parse("Ada").unwrap();
        store
            .create_customer(&id, &name, &token.hash(), 1)
            .await
            .unwrap();

        let found = store.customer_by_token(&token.hash()).await.unwrap();
        assert_eq!(found.map(|c| c.id), Some(id.clone()));
        let other = ResumeToken::generate();
        assert_eq!(store.customer_by_token(&other.hash()).await.unwrap(), None);
        assert_eq!(store.customer(&id).await.unwrap().unwrap().name, "Ada");
    }
}

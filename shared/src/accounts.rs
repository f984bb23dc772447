//! Accounts and their admin keys.
//!
//! A key is stored only as its SHA-256 (keys are 256 random bits when we make
//! them, so a slow password hash would add nothing). The item is found by the
//! first 16 hex digits of that hash and the whole hash is then compared in
//! constant time, so the lookup never compares secret-derived bytes early-out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Platform;
use crate::error::Error;
use crate::keys;
use crate::ports::{Cond, Put, StoreError, Write};

pub const DEFAULT_ACCOUNT: &str = "acct_default";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Lookup of the account's current admin key.
    pub key_lookup: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    account_id: String,
    sha256: String,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lookup(hash: &[u8; 32]) -> String {
    hex(&hash[..8])
}

/// A new secret with a recognisable prefix, so leaked keys can be found by scanners.
pub fn generate_key(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The shortest admin key one may choose (as `template.yaml` asks of the
/// stack parameter): keys are kept as a plain SHA-256, sound only for keys
/// too long to guess.
pub const MIN_CONFIGURED_KEY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "HOOKLINE_ADMIN_KEY is {0} characters; use at least {MIN_CONFIGURED_KEY} (or leave it unset to have one generated)"
    )]
    KeyTooShort(usize),
    #[error("cannot set up the default account: {0}")]
    Store(#[from] StoreError),
}

/// Makes sure the default account exists with an admin key, and answers the
/// key when it was generated now (to be shown once). With `configured`, that
/// key becomes the admin key, replacing an earlier one; a key too short to
/// be kept as a fast hash is refused.
pub async fn ensure_default(
    platform: &Platform,
    configured: Option<&str>,
) -> Result<Option<String>, SetupError> {
    // Clients' keys are read trimmed, so a configured key is too (one read
    // from a file often ends in a newline).
    let configured = configured.map(str::trim).filter(|k| !k.is_empty());
    if let Some(key) = configured
        && key.chars().count() < MIN_CONFIGURED_KEY
    {
        return Err(SetupError::KeyTooShort(key.chars().count()));
    }
    let store = &platform.store;
    let existing = store.get(&keys::account(DEFAULT_ACCOUNT)).await?;
    let current: Option<Account> = existing
        .as_ref()
        .and_then(|i| serde_json::from_value(i.body.clone()).ok());
    let (key, generated) = match (configured, &current) {
        (Some(k), Some(acct)) if acct.key_lookup == lookup(&digest(k)) => return Ok(None),
        (Some(k), _) => (k.to_string(), false),
        (None, Some(_)) => return Ok(None),
        (None, None) => (generate_key("hl_admin"), true),
    };
    let hash = digest(&key);
    let account = Account {
        id: DEFAULT_ACCOUNT.into(),
        name: "Default".into(),
        created_at: current
            .as_ref()
            .map_or_else(|| platform.clock.now(), |a| a.created_at),
        key_lookup: lookup(&hash),
    };
    // Conditional on the account as read, so two processes starting at once
    // cannot both generate a key and print one that does not work.
    let cond = existing
        .as_ref()
        .map_or(Cond::Absent, |i| Cond::Version(i.version));
    let mut writes = vec![
        Write::Put(
            Put::new(
                keys::account(DEFAULT_ACCOUNT),
                serde_json::to_value(&account).expect("serialisable"),
            )
            .when(cond),
        ),
        Write::Put(Put::new(
            keys::admin_key(&account.key_lookup),
            json!(StoredKey {
                account_id: account.id.clone(),
                sha256: hex(&hash)
            }),
        )),
    ];
    if let Some(old) = current.filter(|a| a.key_lookup != account.key_lookup) {
        writes.push(Write::Delete {
            key: keys::admin_key(&old.key_lookup),
            cond: Cond::Any,
        });
    }
    match store.write_all(writes).await {
        Ok(()) => Ok(generated.then_some(key)),
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A new account with a generated admin key, answered once.
pub async fn create(platform: &Platform, name: &str) -> Result<(Account, String), StoreError> {
    let key = generate_key("hl_admin");
    let hash = digest(&key);
    let account = Account {
        id: crate::ids::new_id("acct"),
        name: name.to_string(),
        created_at: platform.clock.now(),
        key_lookup: lookup(&hash),
    };
    platform
        .store
        .write_all(vec![
            Write::Put(
                Put::new(
                    keys::account(&account.id),
                    serde_json::to_value(&account).expect("serialisable"),
                )
                .when(Cond::Absent),
            ),
            Write::Put(
                Put::new(
                    keys::admin_key(&account.key_lookup),
                    json!(StoredKey {
                        account_id: account.id.clone(),
                        sha256: hex(&hash)
                    }),
                )
                .when(Cond::Absent),
            ),
        ])
        .await?;
    Ok((account, key))
}

/// The account whose admin key this is.
pub async fn authenticate(platform: &Platform, key: &str) -> Result<String, Error> {
    let hash = digest(key);
    let item = platform.store.get(&keys::admin_key(&lookup(&hash))).await?;
    let stored: Option<StoredKey> = item.and_then(|i| serde_json::from_value(i.body).ok());
    match stored {
        Some(s) if bool::from(s.sha256.as_bytes().ct_eq(hex(&hash).as_bytes())) => Ok(s.account_id),
        _ => Err(Error::unauthorized("the admin key is not valid")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chosen_key_must_be_long_enough() {
        let (platform, _dir) = crate::testkit::platform().await;
        let e = ensure_default(&platform, Some(" short-key-15-ch \n"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("15 characters") && e.contains("16"), "{e}");
        assert!(
            ensure_default(&platform, Some("dev-admin-key-change-me"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn default_account_key_lifecycle() {
        let (platform, _dir) = crate::testkit::platform().await;
        let key = ensure_default(&platform, None)
            .await
            .unwrap()
            .expect("generated on first start");
        assert!(key.starts_with("hl_admin_") && key.len() > 40);
        assert_eq!(
            ensure_default(&platform, None).await.unwrap(),
            None,
            "printed once only"
        );
        assert_eq!(
            authenticate(&platform, &key).await.unwrap(),
            DEFAULT_ACCOUNT
        );
        assert!(authenticate(&platform, "hl_admin_wrong").await.is_err());
        let mut almost = key.clone();
        almost.pop();
        assert!(authenticate(&platform, &almost).await.is_err());

        // A configured key replaces the generated one; the old key stops working.
        assert_eq!(
            ensure_default(&platform, Some("my-configured-key"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            authenticate(&platform, "my-configured-key").await.unwrap(),
            DEFAULT_ACCOUNT
        );
        assert!(authenticate(&platform, &key).await.is_err());
        // A configured key is trimmed, as the keys clients send are.
        ensure_default(&platform, Some(" my-configured-key\n"))
            .await
            .unwrap();
        assert_eq!(
            authenticate(&platform, "my-configured-key").await.unwrap(),
            DEFAULT_ACCOUNT
        );
        // The store never holds the key itself.
        let page = platform
            .store
            .query(crate::ports::Query::new("admin_key", ""))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(!page.items[0].body.to_string().contains("my-configured-key"));
    }
}

//! Admin keys (several named ones per account) and the operator key.
//!
//! A key is stored only as its SHA-256 (keys are 256 random bits when we make
//! them, so a slow password hash would add nothing). The item is found by the
//! first 16 hex digits of that hash and the whole hash is then compared in
//! constant time, so the lookup never compares secret-derived bytes early-out.
//! Each admin key is kept twice: found by its hash (`admin_key`), and listed
//! under its account with its name and times (`{account}#admin_key`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

use super::{Account, DEFAULT_ACCOUNT, Status};
use crate::Platform;
use crate::error::Error;
use crate::ids::KeyId;
use crate::keys;
use crate::ports::{Cond, Put, Query, StoreError, Write};

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

/// The shortest admin or operator key one may choose (as `template.yaml`
/// asks of the stack parameter): keys are kept as a plain SHA-256, sound
/// only for keys too long to guess.
pub const MIN_CONFIGURED_KEY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{0} is {1} characters; use at least {MIN_CONFIGURED_KEY} (or leave it unset to have one generated)"
    )]
    KeyTooShort(&'static str, usize),
    #[error("cannot set up the accounts: {0}")]
    Store(#[from] StoreError),
    /// The configured key could not be read.
    #[error("{0}")]
    Key(String),
}

/// A key as found by its hash.
#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    account_id: String,
    sha256: String,
    /// Its entry in the account's list (absent for keys made before keys
    /// were listed).
    #[serde(default)]
    key_id: Option<String>,
}

/// An admin key as its account lists it: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AdminKey)]
pub struct KeyRecord {
    #[schema(value_type = KeyId)]
    pub id: String,
    pub name: String,
    /// The key's first characters, to tell keys apart (empty for a key
    /// chosen in `HOOKLINE_ADMIN_KEY`: that one is all secret).
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Within a minute.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub lookup: String,
}

/// How often a key's `last_used_at` is written, at most.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);
/// Keys the most per account: each is a way in to watch.
pub const MAX_KEYS: usize = 50;

/// A new admin key of `account` named `name`: its record, the key (to be
/// shown once) and the writes that keep it.
pub(super) fn new_key(p: &Platform, account: &str, name: &str) -> (KeyRecord, String, Vec<Write>) {
    let key = generate_key("hl_admin");
    let writes_and_record = key_writes(p, account, name, &key, key.chars().take(13).collect());
    (writes_and_record.0, key, writes_and_record.1)
}

fn key_writes(
    p: &Platform,
    account: &str,
    name: &str,
    key: &str,
    prefix: String,
) -> (KeyRecord, Vec<Write>) {
    let hash = digest(key);
    let record = KeyRecord {
        id: KeyId::new().to_string(),
        name: name.to_string(),
        prefix,
        created_at: p.clock.now(),
        last_used_at: None,
        lookup: lookup(&hash),
    };
    let mut listed = serde_json::to_value(&record).expect("serialisable");
    listed["lookup"] = record.lookup.clone().into();
    let writes = vec![
        Write::Put(
            Put::new(
                keys::admin_key(&record.lookup),
                serde_json::to_value(StoredKey {
                    account_id: account.to_string(),
                    sha256: hex(&hash),
                    key_id: Some(record.id.clone()),
                })
                .expect("serialisable"),
            )
            .when(Cond::Absent),
        ),
        Write::Put(Put::new(keys::account_key(account, &record.id), listed).when(Cond::Absent)),
    ];
    (record, writes)
}

fn trimmed(configured: Option<&str>) -> Option<&str> {
    // Clients' keys are read trimmed, so a configured key is too (one read
    // from a file often ends in a newline).
    configured.map(str::trim).filter(|k| !k.is_empty())
}

/// The key configured as `name` (trimmed, and long enough), read while
/// the item kept for it under `kept` is.
async fn read_with(
    platform: &Platform,
    name: &'static str,
    configured: impl std::future::Future<Output = Result<Option<String>, String>>,
    kept: crate::ports::Key,
) -> Result<(Option<String>, Option<crate::ports::Item>), SetupError> {
    let (configured, existing) = tokio::join!(configured, platform.store.get(&kept));
    let configured = configured.map_err(SetupError::Key)?;
    let configured = trimmed(configured.as_deref()).map(str::to_string);
    long_enough(name, configured.as_deref())?;
    Ok((configured, existing?))
}

fn long_enough(name: &'static str, key: Option<&str>) -> Result<(), SetupError> {
    match key {
        Some(k) if k.chars().count() < MIN_CONFIGURED_KEY => {
            Err(SetupError::KeyTooShort(name, k.chars().count()))
        }
        _ => Ok(()),
    }
}

/// Makes sure the default account exists with an admin key, and answers the
/// key when it was generated now (to be shown once). With `configured`, that
/// key becomes the default key, replacing an earlier one; a key too short to
/// be kept as a fast hash is refused. Other keys of the account are kept.
pub async fn ensure_default(
    platform: &Platform,
    configured: Option<&str>,
) -> Result<Option<String>, SetupError> {
    let configured = configured.map(str::to_string);
    ensure_default_with(platform, async { Ok(configured) }).await
}

/// As [`ensure_default`], with the configured key still to come (read from
/// Secrets Manager, say): the account is read meanwhile. The process then
/// remembers the key's hash, and the account for a second, so that a
/// request with the key needs no lookup of it (see `DefaultKey`).
pub async fn ensure_default_with(
    platform: &Platform,
    configured: impl std::future::Future<Output = Result<Option<String>, String>>,
) -> Result<Option<String>, SetupError> {
    let read_at = Instant::now();
    let (configured, existing) = read_with(
        platform,
        "HOOKLINE_ADMIN_KEY",
        configured,
        keys::account(DEFAULT_ACCOUNT),
    )
    .await?;
    let configured = configured.as_deref();
    let current: Option<Account> = existing
        .as_ref()
        .and_then(|i| serde_json::from_value(i.body.clone()).ok());
    let listed = current.as_ref().is_some_and(|a| a.default_key_id.is_some());
    let (key, generated) = match (configured, &current) {
        (Some(k), Some(acct)) if acct.key_lookup == lookup(&digest(k)) && listed => {
            remember_default(platform, acct.clone(), k, read_at);
            return Ok(None);
        }
        (Some(k), _) => (k.to_string(), false),
        (None, Some(acct)) if !listed && !acct.key_lookup.is_empty() => {
            let version = existing.as_ref().map_or(0, |i| i.version);
            return list_default_key(platform, acct, version)
                .await
                .map(|()| None);
        }
        (None, Some(_)) => return Ok(None),
        (None, None) => (generate_key("hl_admin"), true),
    };
    let prefix = if generated {
        key.chars().take(13).collect()
    } else {
        String::new()
    };
    let (record, mut writes) = key_writes(
        platform,
        DEFAULT_ACCOUNT,
        "HOOKLINE_ADMIN_KEY",
        &key,
        prefix,
    );
    let account = Account {
        id: DEFAULT_ACCOUNT.into(),
        name: current
            .as_ref()
            .map_or("Default".into(), |a| a.name.clone()),
        created_at: current
            .as_ref()
            .map_or_else(|| platform.clock.now(), |a| a.created_at),
        key_lookup: record.lookup.clone(),
        default_key_id: Some(record.id.clone()),
        status: current.as_ref().map_or(Status::Active, |a| a.status),
        limits: current
            .as_ref()
            .map(|a| a.limits.clone())
            .unwrap_or_default(),
    };
    // Conditional on the account as read, so two processes starting at once
    // cannot both generate a key and print one that does not work.
    let cond = existing
        .as_ref()
        .map_or(Cond::Absent, |i| Cond::Version(i.version));
    // The same key again (listed now, as keys made before lists were not):
    // its entry by hash is rewritten, not added.
    if let Write::Put(put) = &mut writes[0] {
        put.cond = Cond::Any;
    }
    writes.insert(
        0,
        Write::Put(
            Put::new(
                keys::account(DEFAULT_ACCOUNT),
                serde_json::to_value(&account).expect("serialisable"),
            )
            .when(cond),
        ),
    );
    if let Some(old) = &current {
        if old.key_lookup != account.key_lookup && !old.key_lookup.is_empty() {
            writes.push(Write::Delete {
                key: keys::admin_key(&old.key_lookup),
                cond: Cond::Any,
            });
        }
        if let Some(old_id) = &old.default_key_id {
            writes.push(Write::Delete {
                key: keys::account_key(DEFAULT_ACCOUNT, old_id),
                cond: Cond::Any,
            });
        }
    }
    match platform.store.write_all(writes).await {
        Ok(()) => {
            remember_default(platform, account, &key, read_at);
            Ok(generated.then_some(key))
        }
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The default account's key as this process was given it (its hash): a
/// request with it is let in without a lookup while the default account,
/// read at most a second before, still names it (another process given a
/// new key would have replaced it there). It cannot be revoked otherwise.
#[derive(Default)]
struct DefaultKey(Mutex<Option<[u8; 32]>>);

fn remember_default(p: &Platform, account: Account, key: &str, read_at: Instant) {
    *p.kept
        .get::<DefaultKey>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(digest(key));
    p.kept
        .get::<super::usage::Accounts>()
        .remember(account, read_at);
}

/// The default account, when `hash` is its key as this process was given it.
async fn as_default_key(p: &Platform, hash: &[u8; 32]) -> Result<Option<Arc<Account>>, Error> {
    let given = *p
        .kept
        .get::<DefaultKey>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !given.is_some_and(|given| bool::from(given.ct_eq(hash))) {
        return Ok(None);
    }
    let account = p
        .kept
        .get::<super::usage::Accounts>()
        .get(p, DEFAULT_ACCOUNT)
        .await?;
    Ok(account.filter(|a| a.key_lookup == lookup(hash) && a.status != Status::Deleting))
}

/// Lists the default account's key as kept by a build from before keys
/// were listed (generated then: nothing of it can be shown).
async fn list_default_key(p: &Platform, account: &Account, version: u64) -> Result<(), SetupError> {
    let Some(stored) = p.store.get(&keys::admin_key(&account.key_lookup)).await? else {
        return Ok(());
    };
    let record = KeyRecord {
        id: KeyId::new().to_string(),
        name: "HOOKLINE_ADMIN_KEY".into(),
        prefix: String::new(),
        created_at: account.created_at,
        last_used_at: None,
        lookup: account.key_lookup.clone(),
    };
    let mut listed = serde_json::to_value(&record).expect("serialisable");
    listed["lookup"] = record.lookup.clone().into();
    let mut found = stored.body;
    found["key_id"] = record.id.clone().into();
    let mut updated = account.clone();
    updated.default_key_id = Some(record.id.clone());
    let written = p
        .store
        .write_all(vec![
            Write::Put(
                Put::new(
                    keys::account(DEFAULT_ACCOUNT),
                    serde_json::to_value(&updated).expect("serialisable"),
                )
                .when(Cond::Version(version)),
            ),
            Write::Put(
                Put::new(keys::admin_key(&account.key_lookup), found)
                    .when(Cond::Version(stored.version)),
            ),
            Write::Put(
                Put::new(keys::account_key(DEFAULT_ACCOUNT, &record.id), listed).when(Cond::Absent),
            ),
        ])
        .await;
    match written {
        // Another process listed it meanwhile.
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// When each key's `last_used_at` was last written by this process.
#[derive(Default)]
struct LastUsed(Mutex<HashMap<String, Instant>>);

/// The account whose admin key this is. A revoked key fails at once: the
/// key is looked up on every request (the default account's own key, which
/// cannot be revoked, is checked against that account instead).
pub async fn authenticate(platform: &Platform, key: &str) -> Result<String, Error> {
    let (account, due) = identify(platform, key).await?;
    if let Some(id) = due {
        note_use(platform, &account, &id).await;
    }
    Ok(account)
}

/// The account `key` opens, and the key's id when its last use is due to
/// be written (at most once a minute per process), which the caller does
/// ([`note_use`]) beside its own work: a request's answer does not wait
/// for one write after the other.
pub async fn identify(platform: &Platform, key: &str) -> Result<(String, Option<String>), Error> {
    let (account, id) = identify_key(platform, key).await?;
    let due = id.filter(|id| use_is_due(platform, id));
    Ok((account, due))
}

async fn identify_key(platform: &Platform, key: &str) -> Result<(String, Option<String>), Error> {
    let hash = digest(key);
    if let Some(account) = as_default_key(platform, &hash).await? {
        return Ok((account.id.clone(), account.default_key_id.clone()));
    }
    let item = platform.store.get(&keys::admin_key(&lookup(&hash))).await?;
    let stored: Option<StoredKey> = item.and_then(|i| serde_json::from_value(i.body).ok());
    let stored = match stored {
        Some(s) if bool::from(s.sha256.as_bytes().ct_eq(hex(&hash).as_bytes())) => s,
        _ => return Err(Error::unauthorized("the admin key is not valid")),
    };
    // A deleted account's keys open nothing, from the moment it is deleted
    // (within a second where processes share the store).
    let account = platform
        .kept
        .get::<super::usage::Accounts>()
        .get(platform, &stored.account_id)
        .await?;
    if account.is_none_or(|a| a.status == Status::Deleting) {
        return Err(Error::unauthorized("the admin key is not valid"));
    }
    Ok((stored.account_id, stored.key_id))
}

/// Whether the key's last use is to be written now: not within a minute
/// of the last time this process did (marked done from now).
fn use_is_due(p: &Platform, id: &str) -> bool {
    let now = Instant::now();
    let last = p.kept.get::<LastUsed>();
    let mut last = last.0.lock().unwrap_or_else(|e| e.into_inner());
    if last
        .get(id)
        .is_some_and(|t| now.duration_since(*t) < LAST_USED_EVERY)
    {
        return false;
    }
    last.insert(id.to_string(), now);
    true
}

/// Writes the key's `last_used_at` (when [`identify`] says it is due); a
/// failure to is logged, never the request's.
pub async fn note_use(p: &Platform, account: &str, id: &str) {
    // One write, to a key still listed: one revoked meanwhile is not listed again.
    let mut fields = serde_json::Map::new();
    fields.insert("last_used_at".into(), serde_json::json!(p.clock.now()));
    match p
        .store
        .set_fields(&keys::account_key(account, id), fields)
        .await
    {
        Ok(_) | Err(StoreError::Conflict) => {}
        Err(error) => tracing::warn!(%error, "a key's last use could not be written"),
    }
}

/// A new admin key of the account, shown this once.
pub async fn create_key(
    p: &Platform,
    account: &str,
    name: &str,
) -> Result<(KeyRecord, String), Error> {
    let name = crate::collections::parse_name(name)?;
    let mut query = Query::new(keys::account_keys(account), "");
    query.limit = MAX_KEYS;
    if p.store.query(query).await?.items.len() >= MAX_KEYS {
        return Err(Error::Forbidden {
            code: "key_limit_reached",
            message: format!("an account holds at most {MAX_KEYS} admin keys: revoke one first"),
        });
    }
    let (record, key, writes) = new_key(p, account, &name);
    p.store.write_all(writes).await?;
    Ok((record, key))
}

/// The account's admin keys, oldest first.
pub async fn list_keys(
    p: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<KeyRecord>, Option<String>), Error> {
    let mut query = Query::new(keys::account_keys(account), "");
    query.limit = limit;
    query.cursor = cursor;
    let page = p.store.query(query).await?;
    Ok((
        crate::error::decoded(page.items, "decode admin key")?,
        page.next_cursor,
    ))
}

/// Revokes a key at once. The last key of an account is kept: without it,
/// nobody could use the account (an operator can make it a new one).
pub async fn revoke_key(p: &Platform, account: &str, id: &KeyId) -> Result<(), Error> {
    // The keys' versions also grow with their last use, written beside
    // requests (the caller's own, often): read again and retry, before
    // telling the caller they changed.
    for _ in 0..3 {
        if revoke_once(p, account, id).await? {
            return Ok(());
        }
    }
    Err(Error::conflict(
        "conflict",
        "the account's keys changed meanwhile: list them and retry",
    ))
}

/// One try of [`revoke_key`]: false when a key changed since it was read.
async fn revoke_once(p: &Platform, account: &str, id: &KeyId) -> Result<bool, Error> {
    let key = keys::account_key(account, id);
    let Some(item) = p.store.get(&key).await? else {
        return Err(Error::NotFound(format!("admin key {id} not found")));
    };
    let record: KeyRecord =
        serde_json::from_value(item.body).map_err(|e| Error::internal("decode admin key", e))?;
    if account == DEFAULT_ACCOUNT {
        let default = super::find(p, DEFAULT_ACCOUNT).await?;
        if default.is_some_and(|(a, _)| a.default_key_id.as_deref() == Some(&record.id)) {
            return Err(Error::conflict(
                "configured_key",
                "this is the default account's own key (HOOKLINE_ADMIN_KEY, or the one made at its first start): set HOOKLINE_ADMIN_KEY to replace it",
            ));
        }
    }
    let mut query = Query::new(keys::account_keys(account), "");
    query.limit = 2;
    let Some(other) = p
        .store
        .query(query)
        .await?
        .items
        .into_iter()
        .find(|i| i.key != key)
    else {
        return Err(Error::conflict(
            "last_key",
            "this is the account's only admin key: make another before revoking it",
        ));
    };
    // Another key rewritten as it is, under its version: two revokes at
    // once cannot both pass and leave the account without a key.
    let writes = vec![
        Write::Delete {
            key,
            cond: Cond::Version(item.version),
        },
        Write::Delete {
            key: keys::admin_key(&record.lookup),
            cond: Cond::Any,
        },
        Write::Put(Put::new(other.key, other.body).when(Cond::Version(other.version))),
    ];
    match p.store.write_all(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The operator key as kept: its hash.
#[derive(Debug, Serialize, Deserialize)]
struct OperatorKey {
    sha256: String,
}

/// Makes sure an operator key exists, and answers it when it was generated
/// now (to be shown once); `configured` replaces the one kept.
pub async fn ensure_operator(
    platform: &Platform,
    configured: Option<&str>,
) -> Result<Option<String>, SetupError> {
    let configured = configured.map(str::to_string);
    ensure_operator_with(platform, async { Ok(configured) }).await
}

/// As [`ensure_operator`], with the configured key still to come: the one
/// kept is read meanwhile.
pub async fn ensure_operator_with(
    platform: &Platform,
    configured: impl std::future::Future<Output = Result<Option<String>, String>>,
) -> Result<Option<String>, SetupError> {
    let (configured, existing) = read_with(
        platform,
        "HOOKLINE_OPERATOR_KEY",
        configured,
        keys::operator_key(),
    )
    .await?;
    let configured = configured.as_deref();
    let (key, generated) = match (configured, &existing) {
        (Some(k), Some(item)) if item.body["sha256"] == hex(&digest(k)) => return Ok(None),
        (Some(k), _) => (k.to_string(), false),
        (None, Some(_)) => return Ok(None),
        (None, None) => (generate_key("hl_operator"), true),
    };
    let cond = existing
        .as_ref()
        .map_or(Cond::Absent, |i| Cond::Version(i.version));
    let body = serde_json::to_value(OperatorKey {
        sha256: hex(&digest(&key)),
    })
    .expect("serialisable");
    match platform
        .store
        .put(Put::new(keys::operator_key(), body).when(cond))
        .await
    {
        Ok(_) => Ok(generated.then_some(key)),
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether this is the operator key.
pub async fn authenticate_operator(platform: &Platform, key: &str) -> Result<(), Error> {
    let kept: Option<OperatorKey> = platform
        .store
        .get(&keys::operator_key())
        .await?
        .and_then(|i| serde_json::from_value(i.body).ok());
    match kept {
        Some(k) if bool::from(k.sha256.as_bytes().ct_eq(hex(&digest(key)).as_bytes())) => Ok(()),
        _ => Err(Error::unauthorized("the operator key is not valid")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default account and its key as a build from before keys were
    /// listed kept them.
    async fn plant_unlisted(platform: &Platform, key: &str) {
        let hash = digest(key);
        platform
            .store
            .write_all(vec![
                Write::Put(Put::new(
                    keys::account(DEFAULT_ACCOUNT),
                    serde_json::json!({"id": DEFAULT_ACCOUNT, "name": "Default",
                    "created_at": "2026-01-01T00:00:00Z", "key_lookup": lookup(&hash)}),
                )),
                Write::Put(Put::new(
                    keys::admin_key(&lookup(&hash)),
                    serde_json::json!({"account_id": DEFAULT_ACCOUNT, "sha256": hex(&hash)}),
                )),
            ])
            .await
            .unwrap();
    }

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
        let e = ensure_operator(&platform, Some("too-short"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("HOOKLINE_OPERATOR_KEY"), "{e}");
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
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert!(key.starts_with(&listed[0].prefix) && listed[0].prefix.len() == 13);

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
        // Listed once, showing nothing of a key someone chose.
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].prefix, "");
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

    /// Another process with the same store (an instance started with a new
    /// `HOOKLINE_ADMIN_KEY`).
    fn another_process(platform: &Platform) -> Arc<Platform> {
        Platform::new(
            platform.store.clone(),
            crate::platform::Queues::single(platform.apply_queue.clone()),
            platform.clock.clone(),
            platform.settings.clone(),
        )
    }

    /// A process lets its own default key in without looking it up, and
    /// stops once another process has given the default account a new key
    /// (within the second it trusts the account it read).
    #[tokio::test]
    async fn a_default_key_replaced_elsewhere_stops_opening_the_account() {
        let (platform, _dir) = crate::testkit::platform().await;
        ensure_default(&platform, Some("first-configured-key"))
            .await
            .unwrap();
        // Found without its item: the account read at the start names it.
        let record = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap()
            .0
            .remove(0);
        let item = keys::admin_key(&record.lookup);
        let kept = platform.store.get(&item).await.unwrap().unwrap();
        platform.store.delete(&item, Cond::Any).await.unwrap();
        assert_eq!(
            authenticate(&platform, "first-configured-key")
                .await
                .unwrap(),
            DEFAULT_ACCOUNT
        );
        platform.store.put(Put::new(item, kept.body)).await.unwrap();

        let other = another_process(&platform);
        ensure_default(&other, Some("second-configured-key"))
            .await
            .unwrap();
        assert_eq!(
            authenticate(&other, "second-configured-key").await.unwrap(),
            DEFAULT_ACCOUNT
        );
        assert!(authenticate(&other, "first-configured-key").await.is_err());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert!(
            authenticate(&platform, "first-configured-key")
                .await
                .is_err()
        );
        assert_eq!(
            authenticate(&platform, "second-configured-key")
                .await
                .unwrap(),
            DEFAULT_ACCOUNT
        );
    }

    /// A key's last use is listed (written once a minute per key and
    /// process), the default key's as any other's; a key revoked is not
    /// listed again by a use noted after.
    #[tokio::test]
    async fn a_keys_last_use_is_listed() {
        let (platform, _dir) = crate::testkit::platform().await;
        ensure_default(&platform, Some("the-configured-key"))
            .await
            .unwrap();
        let (_, key) = create_key(&platform, DEFAULT_ACCOUNT, "deploys")
            .await
            .unwrap();
        let listed = || async {
            let (keys, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
                .await
                .unwrap();
            keys.into_iter()
                .map(|k| (k.name, k.last_used_at))
                .collect::<HashMap<_, _>>()
        };
        assert!(listed().await.values().all(Option::is_none));
        authenticate(&platform, "the-configured-key").await.unwrap();
        authenticate(&platform, &key).await.unwrap();
        let used = listed().await;
        let now = platform.clock.now();
        for (name, at) in &used {
            let at = at.unwrap_or_else(|| panic!("{name}: no last use"));
            assert!((now - at).num_seconds().abs() < 5, "{name}: {at}");
        }
        // A use noted for a key revoked meanwhile lists nothing.
        let id = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap()
            .0
            .into_iter()
            .find(|k| k.name == "deploys")
            .unwrap()
            .id;
        revoke_key(&platform, DEFAULT_ACCOUNT, &KeyId::parse(&id).unwrap())
            .await
            .unwrap();
        note_use(&another_process(&platform), DEFAULT_ACCOUNT, &id).await;
        assert_eq!(listed().await.len(), 1);
    }

    /// A key stored before keys were listed is listed at the next start,
    /// and keeps working.
    #[tokio::test]
    async fn a_key_from_before_lists_is_listed() {
        let (platform, _dir) = crate::testkit::platform().await;
        let key = "a-key-from-an-older-build";
        plant_unlisted(&platform, key).await;
        assert_eq!(authenticate(&platform, key).await.unwrap(), DEFAULT_ACCOUNT);
        // Generated then: listed at a start without HOOKLINE_ADMIN_KEY...
        ensure_default(&platform, None).await.unwrap();
        assert_eq!(authenticate(&platform, key).await.unwrap(), DEFAULT_ACCOUNT);
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].prefix, "");
        // ...and, as the default account's own key, kept.
        create_key(&platform, DEFAULT_ACCOUNT, "second")
            .await
            .unwrap();
        let first = KeyId::parse(&listed[0].id).unwrap();
        let e = revoke_key(&platform, DEFAULT_ACCOUNT, &first)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "configured_key");
        assert_eq!(authenticate(&platform, key).await.unwrap(), DEFAULT_ACCOUNT);
        // Chosen: listed at a start with it set.
        let (platform, _dir) = crate::testkit::platform().await;
        plant_unlisted(&platform, key).await;
        ensure_default(&platform, Some(key)).await.unwrap();
        assert_eq!(authenticate(&platform, key).await.unwrap(), DEFAULT_ACCOUNT);
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
    }

    #[tokio::test]
    async fn keys_are_made_listed_used_and_revoked_at_once() {
        let (platform, _dir) = crate::testkit::platform().await;
        let first = ensure_default(&platform, None).await.unwrap().unwrap();
        let (record, second) = create_key(&platform, DEFAULT_ACCOUNT, " CI ")
            .await
            .unwrap();
        assert_eq!(record.name, "CI");
        assert_eq!(
            authenticate(&platform, &second).await.unwrap(),
            DEFAULT_ACCOUNT
        );
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        let used = listed.iter().find(|k| k.id == record.id).unwrap();
        assert!(used.last_used_at.is_some(), "{used:?}");
        let id = KeyId::parse(&record.id).unwrap();
        revoke_key(&platform, DEFAULT_ACCOUNT, &id).await.unwrap();
        assert!(authenticate(&platform, &second).await.is_err());
        assert_eq!(
            authenticate(&platform, &first).await.unwrap(),
            DEFAULT_ACCOUNT
        );
        // The default account's own key stays (its setting replaces it).
        let (listed, _) = list_keys(&platform, DEFAULT_ACCOUNT, 10, None)
            .await
            .unwrap();
        let own = KeyId::parse(&listed[0].id).unwrap();
        let e = revoke_key(&platform, DEFAULT_ACCOUNT, &own)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "configured_key");
        // The last key of an account stays: without it, nobody could use it.
        let (other, _) = super::super::create(&platform, "Other", Default::default())
            .await
            .unwrap();
        let (theirs, _) = list_keys(&platform, &other.id, 10, None).await.unwrap();
        let theirs = KeyId::parse(&theirs[0].id).unwrap();
        let e = revoke_key(&platform, &other.id, &theirs).await.unwrap_err();
        assert_eq!(e.code(), "last_key");
        // Two keys revoked at once: one revoke passes, never both.
        create_key(&platform, &other.id, "b").await.unwrap();
        let (listed, _) = list_keys(&platform, &other.id, 10, None).await.unwrap();
        let ids: Vec<KeyId> = listed
            .iter()
            .map(|k| KeyId::parse(&k.id).unwrap())
            .collect();
        let (one, two) = tokio::join!(
            revoke_key(&platform, &other.id, &ids[0]),
            revoke_key(&platform, &other.id, &ids[1])
        );
        assert!(one.is_ok() != two.is_ok(), "{one:?} {two:?}");
        let (left, _) = list_keys(&platform, &other.id, 10, None).await.unwrap();
        assert_eq!(left.len(), 1);
        // Another account's key is not found from this one.
        let e = revoke_key(&platform, DEFAULT_ACCOUNT, &theirs)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
    }

    #[tokio::test]
    async fn the_operator_key_is_made_once_and_replaced_when_configured() {
        let (platform, _dir) = crate::testkit::platform().await;
        let key = ensure_operator(&platform, None).await.unwrap().unwrap();
        assert!(key.starts_with("hl_operator_"));
        assert_eq!(ensure_operator(&platform, None).await.unwrap(), None);
        authenticate_operator(&platform, &key).await.unwrap();
        assert!(authenticate_operator(&platform, "nope").await.is_err());
        // It opens no account, and no admin key opens the operator's routes.
        assert!(authenticate(&platform, &key).await.is_err());
        let admin = ensure_default(&platform, None).await.unwrap().unwrap();
        assert!(authenticate_operator(&platform, &admin).await.is_err());
        ensure_operator(&platform, Some("the-operator-key-chosen"))
            .await
            .unwrap();
        authenticate_operator(&platform, "the-operator-key-chosen")
            .await
            .unwrap();
        assert!(authenticate_operator(&platform, &key).await.is_err());
    }
}

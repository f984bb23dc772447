//! Accounts: the tenants an operator runs. Every object lives under one;
//! each has a name, a status (active or suspended), admin keys (`keys`),
//! and limits with the global settings as defaults, counted in `usage`.

mod keys;
mod purge;
pub mod usage;

pub use keys::*;
pub use purge::{purge, purge_campaign};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Platform;
use crate::config::Settings;
use crate::error::Error;
use crate::patch::Patch;
use crate::ports::{Cond, Put, Query, StoreError};

pub const DEFAULT_ACCOUNT: &str = "acct_default";
/// How long after a delete its purge starts.
const PURGE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
const ID_PREFIX: &str = "acct";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The default account: lookup of the key `HOOKLINE_ADMIN_KEY` set, so
    /// that a new one replaces it.
    #[serde(default)]
    pub key_lookup: String,
    /// The default account: the id of that key in its list of keys.
    #[serde(default)]
    pub default_key_id: Option<String>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub limits: Limits,
}

/// Whether an account's trigger URLs take requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccountStatus)]
pub enum Status {
    #[default]
    Active,
    /// Its trigger URLs answer 403 `account_suspended`; its admin routes
    /// still answer, and nothing it holds is lost.
    Suspended,
    /// Deleted: its keys open nothing, its trigger URLs answer 404, and
    /// what it held is being removed in the background.
    Deleting,
}

/// An account's limits as the operator set them: absent, the global
/// default; `null`, none; a number, that.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub webhooks: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub triggers: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub inbound_per_second: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub inbound_per_month: Patch<u64>,
}

/// An account's limits in force: `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AccountLimits)]
pub struct Effective {
    #[schema(required = true)]
    pub webhooks: Option<u64>,
    #[schema(required = true)]
    pub triggers: Option<u64>,
    /// Requests a second to its trigger URLs, all together; past it, 429
    /// `rate_limited`.
    #[schema(required = true)]
    pub inbound_per_second: Option<u64>,
    /// Requests a calendar month (UTC) to its trigger URLs; past it, 429
    /// `quota_exceeded`.
    #[schema(required = true)]
    pub inbound_per_month: Option<u64>,
}

impl Limits {
    pub fn effective(&self, defaults: &Settings) -> Effective {
        let pick = |set: &Patch<u64>, default: Option<u64>| match set {
            Patch::Absent => default,
            Patch::Null => None,
            Patch::Value(n) => Some(*n),
        };
        Effective {
            webhooks: pick(&self.webhooks, Some(u64::from(defaults.webhook_limit))),
            triggers: pick(&self.triggers, defaults.trigger_limit),
            inbound_per_second: pick(&self.inbound_per_second, defaults.inbound_per_second),
            inbound_per_month: pick(&self.inbound_per_month, defaults.inbound_per_month),
        }
    }

    /// These, changed by `patch`: each limit it names is set (`null`:
    /// none; `"default"`: the global default again); the others are kept.
    fn patched(&self, patch: LimitsPatch) -> Limits {
        let pick = |name: &str, set: Patch<u64>, current: &Patch<u64>| match set {
            _ if patch.reset.iter().any(|r| r == name) => Patch::Absent,
            Patch::Absent => current.clone(),
            other => other,
        };
        let set = patch.set.clone();
        Limits {
            webhooks: pick("webhooks", set.webhooks, &self.webhooks),
            triggers: pick("triggers", set.triggers, &self.triggers),
            inbound_per_second: pick(
                "inbound_per_second",
                set.inbound_per_second,
                &self.inbound_per_second,
            ),
            inbound_per_month: pick(
                "inbound_per_month",
                set.inbound_per_month,
                &self.inbound_per_month,
            ),
        }
    }
}

/// Limits as a request gives them: those set, and those named `"default"`.
#[derive(Debug, Clone, Default)]
pub struct LimitsPatch {
    pub set: Limits,
    pub reset: Vec<String>,
}

/// `text` as an account id, if it could be one: the default account's, or
/// `acct_` and a ULID.
pub fn parse_id(text: &str) -> Option<&str> {
    (text == DEFAULT_ACCOUNT || crate::ids::looks_like(text, ID_PREFIX)).then_some(text)
}

/// The account, or `None`.
pub async fn find(p: &Platform, id: &str) -> Result<Option<(Account, u64)>, StoreError> {
    if parse_id(id).is_none() {
        return Ok(None);
    }
    let Some(item) = p.store.get(&crate::keys::account(id)).await? else {
        return Ok(None);
    };
    let version = item.version;
    serde_json::from_value(item.body)
        .map(|a| Some((a, version)))
        .map_err(|e| StoreError::Backend(format!("corrupt account: {e}")))
}

/// The account, or 404 (a deleted one too, while its data goes).
pub async fn get(p: &Platform, id: &str) -> Result<(Account, u64), Error> {
    find(p, id)
        .await?
        .filter(|(a, _)| a.status != Status::Deleting)
        .ok_or_else(|| Error::NotFound(format!("account {id} not found")))
}

/// Accounts in id order (the default account first), and the cursor of the rest.
pub async fn page(
    p: &Platform,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Account>, Option<String>), Error> {
    let mut query = Query::new(crate::keys::ACCOUNTS, "");
    query.limit = limit;
    query.cursor = cursor;
    let page = p.store.query(query).await?;
    let all: Vec<Account> = crate::error::decoded(page.items, "decode account")?;
    // Deleted ones are gone for the operator at once (a page may then hold
    // fewer than asked; the cursor still leads on).
    let live = all
        .into_iter()
        .filter(|a| a.status != Status::Deleting)
        .collect();
    Ok((live, page.next_cursor))
}

/// A new account and its first admin key (answered once).
pub async fn create(p: &Platform, name: &str, limits: Limits) -> Result<(Account, String), Error> {
    let account = Account {
        id: crate::ids::new_id(ID_PREFIX),
        name: crate::collections::parse_name(name)?,
        created_at: p.clock.now(),
        key_lookup: String::new(),
        default_key_id: None,
        status: Status::Active,
        limits,
    };
    let (_, key, writes) = keys::new_key(p, &account.id, "first key");
    let mut all = vec![crate::ports::Write::Put(
        Put::new(
            crate::keys::account(&account.id),
            serde_json::to_value(&account).expect("serialisable"),
        )
        .when(Cond::Absent),
    )];
    all.extend(writes);
    p.store.write_all(all).await?;
    Ok((account, key))
}

/// What an operator may change of an account.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[schema(value_type = Option<crate::collections::Name>)]
    pub name: Option<String>,
    /// The limits to change (`"default"`: back to the global default);
    /// those left out are kept.
    #[serde(default, deserialize_with = "some_limits_object")]
    #[schema(value_type = Option<LimitsInput>)]
    pub limits: Option<LimitsPatch>,
}

/// Limits as an operator sets them: a number up to a trillion, `null` for
/// none, `"default"` for the global default; left out, the global default
/// (on create) or as it was (on update).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LimitsInput {
    #[schema(value_type = Option<LimitValue>)]
    webhooks: Option<serde_json::Value>,
    #[schema(value_type = Option<LimitValue>)]
    triggers: Option<serde_json::Value>,
    #[schema(value_type = Option<LimitValue>)]
    inbound_per_second: Option<serde_json::Value>,
    #[schema(value_type = Option<LimitValue>)]
    inbound_per_month: Option<serde_json::Value>,
}

/// One limit: a whole number up to a trillion, or `"default"` (or `null`: none).
pub struct LimitValue;

impl utoipa::PartialSchema for LimitValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        let number = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_LIMIT as f64));
        let default = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["default"]));
        utoipa::openapi::RefOr::T(Schema::OneOf(
            OneOfBuilder::new().item(number).item(default).build(),
        ))
    }
}

impl utoipa::ToSchema for LimitValue {}

/// The largest limit one may set: past it, set none.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// `limits` (a JSON object, not the list serde would also read a struct
/// from; `null` is none given), each at most [`MAX_LIMIT`].
pub fn limits_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
    // On a new account, `"default"` is as left out.
    Ok(some_limits_object(d)?.map(|p| p.set).unwrap_or_default())
}

fn some_limits_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<LimitsPatch>, D::Error> {
    use serde::de::Error as _;
    let mut value = serde_json::Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    // A whole number written with a point (`5.0`) is that number, as JSON
    // Schema's `integer` has it.
    if let Some(fields) = value.as_object_mut() {
        for v in fields.values_mut() {
            if let Some(f) = v.as_f64().filter(|_| v.is_f64())
                && f.fract() == 0.0
                && (0.0..=MAX_LIMIT as f64).contains(&f)
            {
                *v = serde_json::Value::from(f as u64);
            }
        }
    }
    let Some(fields) = value.as_object_mut() else {
        return Err(D::Error::custom("limits must be an object"));
    };
    let reset: Vec<String> = fields
        .iter()
        .filter(|(_, v)| v.as_str() == Some("default"))
        .map(|(k, _)| k.clone())
        .collect();
    fields.retain(|_, v| v.as_str() != Some("default"));
    let limits: Limits = serde_json::from_value(value).map_err(D::Error::custom)?;
    for (name, limit) in [
        ("webhooks", &limits.webhooks),
        ("triggers", &limits.triggers),
        ("inbound_per_second", &limits.inbound_per_second),
        ("inbound_per_month", &limits.inbound_per_month),
    ] {
        if let Patch::Value(n) = limit
            && *n > MAX_LIMIT
        {
            return Err(D::Error::custom(format!(
                "limits.{name}: {n} is past {MAX_LIMIT}; for no limit, send null"
            )));
        }
    }
    for name in &reset {
        if ![
            "webhooks",
            "triggers",
            "inbound_per_second",
            "inbound_per_month",
        ]
        .contains(&name.as_str())
        {
            return Err(D::Error::custom(format!("limits: unknown limit {name:?}")));
        }
    }
    Ok(Some(LimitsPatch { set: limits, reset }))
}

/// Deletes an account: at once its keys open nothing and its trigger URLs
/// answer 404 (within a second on AWS); what it held is removed in the
/// background, page by page (`purge`). The default account stays (its key
/// comes from `HOOKLINE_ADMIN_KEY`): suspend it instead.
pub async fn delete(p: &Platform, id: &str) -> Result<(), Error> {
    if id == DEFAULT_ACCOUNT {
        return Err(Error::conflict(
            "default_account",
            "the default account cannot be deleted: suspend it instead",
        ));
    }
    let (account, _) = find(p, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("account {id} not found")))?;
    // Queued first, so that no deleted account keeps its data for want of
    // a message: the purge waits (retried) until the account is marked.
    // It starts once every process has seen the account deleted (their
    // copies last a second) and requests in flight have finished.
    let purge = crate::messages::ApplyMessage::PurgeAccount {
        account: id.to_string(),
    };
    p.apply_queue.send(purge.encode(), PURGE_AFTER).await?;
    if account.status != Status::Deleting {
        update(p, id, AccountPatch::default(), Some(Status::Deleting)).await?;
    }
    Ok(())
}

/// Changes an account under its version (concurrent edits are not lost);
/// `status` suspends or resumes it.
pub async fn update(
    p: &Platform,
    id: &str,
    patch: AccountPatch,
    status: Option<Status>,
) -> Result<Account, Error> {
    let (mut account, version) = find(p, id)
        .await?
        .filter(|(a, _)| a.status != Status::Deleting)
        .ok_or_else(|| Error::NotFound(format!("account {id} not found")))?;
    if let Some(name) = &patch.name {
        account.name = crate::collections::parse_name(name)?;
    }
    if let Some(limits) = patch.limits {
        account.limits = account.limits.patched(limits);
    }
    if let Some(status) = status {
        account.status = status;
    }
    p.store
        .put(
            Put::new(
                crate::keys::account(id),
                serde_json::to_value(&account).expect("serialisable"),
            )
            .when(Cond::Version(version)),
        )
        .await?;
    p.kept.get::<usage::Accounts>().forget(id);
    Ok(account)
}

//! Where every item lives: the whole key layout, in one place.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | account | `account` | account id |
//! | admin key, found by the key | `admin_key` | first 16 hex digits of the key's SHA-256 |
//! | admin key, listed by account | `{account}#admin_key` | key id |
//! | operator key | `operator` | `key` |
//! | account usage counter | `{account}#usage` | `triggers`, `webhooks`, `inbound#{YYYY-MM}`, `second#{unix second}` |
//! | contact list, sequence | `{account}#list`, `{account}#sequence` | its id |
//! | member of a list / sequence | `{account}#list#{id}`, `{account}#sequence#{id}` | contact id |
//! | contact | `{account}#contact` | contact id |
//! | contact lookup | `{account}#contact_by#email`, `{account}#contact_by#phone_number` | the normalised value |
//! | trigger, found by id (ingest) | `trigger` | trigger id |
//! | trigger, listed by account | `{account}#trigger` | trigger id |
//! | inbound request (log) | `{account}#trigger_request#{trigger id}` | request id (time-ordered) |
//! | idempotency key | `trigger_idem#{trigger id}` | the key (expires after 24 h) |
//! | webhook | `{account}#webhook` | webhook id |
//! | webhook's failing streak | `{account}#webhook_health` | webhook id |
//! | delivery attempt (log) | `{account}#attempt#{webhook id}` | attempt id (time-ordered) |
//! | delivery waiting past the queue's longest delay | `parked#{minute}` | delivery id |
//! | event a trigger's action published (a marker: not again) | `{account}#event` | event id |
//! | message a trigger's action sent (likewise) | `{account}#message` | message id |
//! | dead letter (a queue message given up on) | `{account}#dead_letter` | dead letter id (time-ordered) |
//! | user profile, with its daily event counts | `{account}#profile#{segment, 00..15}` | distinct id |
//! | a tracked event's `$insert_id` (counted once; kept 90 days) | `{account}#insert_id#{segment}` | `{distinct id}` newline `{insert id}` |
//! | webhook campaign | `{account}#campaign` | campaign id |
//! | campaign due to run (every account's) | `campaign_due` | `{next run, RFC 3339}#{account}#{campaign id}` |
//! | campaign's lease (a run in progress) | `{account}#campaign_lease` | campaign id |
//! | campaign run | `{account}#campaign_run#{campaign id}` | run id (time-ordered) |
//! | run's counters | `{account}#campaign_count#{run id}` | `matched`, `queued`, `sent`, `failed`, ... |
//! | users a run claimed and has not batched yet (segments' remainders) | `{account}#campaign_ready#{run id}` | distinct id |
//! | what a run did once (a segment ended, a page matched, a batch counted) | `{account}#campaign_done#{run id}` | `seg#{segment}`, `page#{segment}#{cursor digest}`, `batch#{first user}` |
//! | a user's record in a campaign (claimed, sent) | `{account}#campaign_user#{campaign id}` | distinct id |
//! | campaign batch attempt (log) | `{account}#campaign_attempt#{campaign id}` | attempt id (time-ordered) |
//!
//! Partitions are per account and per resource, so a list query reads one
//! partition and accounts never share one.

use crate::ports::Key;

/// The partition of accounts.
pub const ACCOUNTS: &str = "account";

pub fn account(id: &str) -> Key {
    Key::new(ACCOUNTS, id)
}

pub fn account_keys(account: &str) -> String {
    format!("{account}#admin_key")
}

pub fn account_key(account: &str, id: &str) -> Key {
    Key::new(account_keys(account), id)
}

pub fn operator_key() -> Key {
    Key::new("operator", "key")
}

pub fn usage(account: &str, what: &str) -> Key {
    Key::new(format!("{account}#usage"), what)
}

pub fn admin_key(lookup: &str) -> Key {
    Key::new("admin_key", lookup)
}

/// `kind`: a collection kind's word (`collections::Kind` converts).
pub fn collections(kind: impl Into<&'static str>, account: &str) -> String {
    format!("{account}#{}", kind.into())
}

pub fn collection(kind: impl Into<&'static str>, account: &str, id: &str) -> Key {
    Key::new(collections(kind, account), id)
}

pub fn members(kind: impl Into<&'static str>, account: &str, id: &str) -> String {
    format!("{account}#{}#{id}", kind.into())
}

pub fn contacts(account: &str) -> String {
    format!("{account}#contact")
}

pub fn contact(account: &str, id: &str) -> Key {
    Key::new(contacts(account), id)
}

/// `identifier`: a contact field's name (`contacts::Identifier` converts).
pub fn contact_by(account: &str, identifier: impl Into<&'static str>, value: &str) -> Key {
    Key::new(format!("{account}#contact_by#{}", identifier.into()), value)
}

pub fn trigger(id: &str) -> Key {
    Key::new("trigger", id)
}

pub fn account_triggers(account: &str) -> String {
    format!("{account}#trigger")
}

pub fn account_trigger(account: &str, id: &str) -> Key {
    Key::new(account_triggers(account), id)
}

pub fn trigger_requests(account: &str, trigger: &str) -> String {
    format!("{account}#trigger_request#{trigger}")
}

pub fn trigger_request(account: &str, trigger: &str, request: &str) -> Key {
    Key::new(trigger_requests(account, trigger), request)
}

pub fn idempotency(trigger: &str, key: &str) -> Key {
    Key::new(format!("trigger_idem#{trigger}"), key)
}

pub fn webhooks(account: &str) -> String {
    format!("{account}#webhook")
}

pub fn webhook(account: &str, id: &str) -> Key {
    Key::new(webhooks(account), id)
}

pub fn webhook_healths(account: &str) -> String {
    format!("{account}#webhook_health")
}

pub fn webhook_health(account: &str, id: &str) -> Key {
    Key::new(webhook_healths(account), id)
}

pub fn attempts(account: &str, webhook: &str) -> String {
    format!("{account}#attempt#{webhook}")
}

pub fn attempt(account: &str, webhook: &str, id: &str) -> Key {
    Key::new(attempts(account, webhook), id)
}

pub fn event(account: &str, id: &str) -> Key {
    Key::new(format!("{account}#event"), id)
}

pub fn message(account: &str, id: &str) -> Key {
    Key::new(format!("{account}#message"), id)
}

/// Messages with no account to show them to (not even readable) go here.
pub const NO_ACCOUNT: &str = "_none";

pub fn dead_letters(account: &str) -> String {
    format!("{account}#dead_letter")
}

pub fn dead_letter(account: &str, id: &str) -> Key {
    Key::new(dead_letters(account), id)
}

/// `segment`: which of an account's profile partitions (`profiles::segment_of`).
pub fn profiles(account: &str, segment: u32) -> String {
    format!("{account}#profile#{segment:02}")
}

pub fn profile(account: &str, segment: u32, distinct_id: &str) -> Key {
    Key::new(profiles(account, segment), distinct_id)
}

pub fn campaigns(account: &str) -> String {
    format!("{account}#campaign")
}

pub fn campaign(account: &str, id: &str) -> Key {
    Key::new(campaigns(account), id)
}

/// The partition of every account's campaigns waiting for their next run.
pub const CAMPAIGNS_DUE: &str = "campaign_due";

pub fn campaign_due(at: &str, account: &str, id: &str) -> Key {
    Key::new(CAMPAIGNS_DUE, format!("{at}#{account}#{id}"))
}

pub fn campaign_lease(account: &str, id: &str) -> Key {
    Key::new(format!("{account}#campaign_lease"), id)
}

pub fn campaign_runs(account: &str, campaign: &str) -> String {
    format!("{account}#campaign_run#{campaign}")
}

pub fn campaign_run(account: &str, campaign: &str, run: &str) -> Key {
    Key::new(campaign_runs(account, campaign), run)
}

pub fn run_counter(account: &str, run: &str, what: &str) -> Key {
    Key::new(format!("{account}#campaign_count#{run}"), what)
}

pub fn campaign_users(account: &str, campaign: &str) -> String {
    format!("{account}#campaign_user#{campaign}")
}

pub fn campaign_user(account: &str, campaign: &str, distinct_id: &str) -> Key {
    Key::new(campaign_users(account, campaign), distinct_id)
}

pub fn campaign_attempts(account: &str, campaign: &str) -> String {
    format!("{account}#campaign_attempt#{campaign}")
}

pub fn campaign_attempt(account: &str, campaign: &str, id: &str) -> Key {
    Key::new(campaign_attempts(account, campaign), id)
}

pub fn run_ready(account: &str, run: &str) -> String {
    format!("{account}#campaign_ready#{run}")
}

pub fn run_done(account: &str, run: &str) -> String {
    format!("{account}#campaign_done#{run}")
}

pub fn insert_id(account: &str, segment: u32, distinct_id: &str, insert_id: &str) -> Key {
    Key::new(
        format!("{account}#insert_id#{segment:02}"),
        format!("{distinct_id}\n{insert_id}"),
    )
}

//! Contacts, found by email or phone number.

mod values;

pub use values::{Email, PhoneNumber};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Platform;
use crate::ids;
use crate::keys;
use crate::ports::store::{OPTIMISTIC_ATTEMPTS, contention_pause};
use crate::ports::{Cond, Item, Put, StoreError, Write};
use crate::transforms::ContactFields;

pub const ID_PREFIX: &str = "ct";
/// The longest name, first or last name a contact keeps.
const MAX_NAME: usize = 500;

/// The contact field that finds the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    Email,
    PhoneNumber,
}

impl Identifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Identifier::Email => "email",
            Identifier::PhoneNumber => "phone_number",
        }
    }

    fn other(self) -> Identifier {
        match self {
            Identifier::Email => Identifier::PhoneNumber,
            Identifier::PhoneNumber => Identifier::Email,
        }
    }
}

/// Its field's name, as keys name it.
impl From<Identifier> for &'static str {
    fn from(identifier: Identifier) -> Self {
        identifier.as_str()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Contact {
    pub id: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub fields: Map<String, Value>,
    pub lists: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the request that last set its fields was received: changes from
    /// an older request (redelivered, or overtaken in the queue) are not
    /// applied over newer ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by_request_at: Option<DateTime<Utc>>,
}

impl Contact {
    pub fn identifier(&self, which: Identifier) -> Option<&str> {
        match which {
            Identifier::Email => self.email.as_deref(),
            Identifier::PhoneNumber => self.phone_number.as_deref(),
        }
    }

    /// Who this is, in a line: for member records and logs.
    pub fn summary(&self) -> Value {
        json!({"contact_id": self.id, "email": self.email, "phone_number": self.phone_number, "name": self.name})
    }
}

/// Contact fields checked and normalised: what a payload may set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub email: Option<Email>,
    pub phone_number: Option<PhoneNumber>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub fields: Map<String, Value>,
}

impl Changes {
    /// Checks the values a transform produced. Empty strings count as absent
    /// (Mixmax's own example posts `"email": ""`).
    pub fn parse(f: ContactFields) -> Result<Self, String> {
        let present = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        for (field, value) in [
            ("name", &f.name),
            ("first_name", &f.first_name),
            ("last_name", &f.last_name),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_NAME) {
                return Err(format!("{field} is longer than {MAX_NAME} characters"));
            }
        }
        let mut name = present(f.name);
        let (first_name, last_name) = (present(f.first_name), present(f.last_name));
        if name.is_none() {
            let joined = [first_name.as_deref(), last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            name = Some(joined).filter(|n| !n.is_empty());
        }
        Ok(Self {
            email: present(f.email).map(|e| Email::parse(&e)).transpose()?,
            phone_number: present(f.phone_number)
                .map(|p| PhoneNumber::parse(&p))
                .transpose()?,
            name,
            first_name,
            last_name,
            fields: f.fields,
        })
    }

    fn identifier(&self, which: Identifier) -> Option<&str> {
        match which {
            Identifier::Email => self.email.as_ref().map(Email::as_str),
            Identifier::PhoneNumber => self.phone_number.as_ref().map(PhoneNumber::as_str),
        }
    }

    fn fill_gaps(&self, c: &mut Contact, now: DateTime<Utc>) {
        let fill = |field: &mut Option<String>, value: Option<&str>| {
            if field.is_none() {
                *field = value.map(String::from);
            }
        };
        fill(&mut c.email, self.email.as_ref().map(Email::as_str));
        fill(
            &mut c.phone_number,
            self.phone_number.as_ref().map(PhoneNumber::as_str),
        );
        fill(&mut c.name, self.name.as_deref());
        fill(&mut c.first_name, self.first_name.as_deref());
        fill(&mut c.last_name, self.last_name.as_deref());
        for (k, v) in &self.fields {
            c.fields.entry(k.clone()).or_insert_with(|| v.clone());
        }
        c.updated_at = now;
    }

    fn apply_to(&self, c: &mut Contact, now: DateTime<Utc>) {
        if let Some(e) = &self.email {
            c.email = Some(e.as_str().to_string());
        }
        if let Some(p) = &self.phone_number {
            c.phone_number = Some(p.as_str().to_string());
        }
        for (field, value) in [
            (&mut c.name, &self.name),
            (&mut c.first_name, &self.first_name),
            (&mut c.last_name, &self.last_name),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        for (k, v) in &self.fields {
            c.fields.insert(k.clone(), v.clone());
        }
        c.updated_at = now;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    /// The payload cannot make a contact; the reason is for the user.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn decode(item: Item) -> Result<(Contact, u64), StoreError> {
    let version = item.version;
    serde_json::from_value(item.body)
        .map(|c| (c, version))
        .map_err(|e| StoreError::Backend(format!("corrupt contact: {e}")))
}

/// The account's contacts, in id order (stored documents), and the cursor
/// of the rest.
pub async fn page(
    p: &Platform,
    account: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<crate::ports::Page, StoreError> {
    let mut query = crate::ports::Query::new(keys::contacts(account), "");
    query.limit = limit;
    query.cursor = cursor;
    p.store.query(query).await
}

pub async fn get(
    platform: &Platform,
    account: &str,
    id: &str,
) -> Result<Option<(Contact, u64)>, StoreError> {
    if !ids::looks_like(id, ID_PREFIX) {
        return Ok(None);
    }
    platform
        .store
        .get(&keys::contact(account, id))
        .await?
        .map(decode)
        .transpose()
}

/// The contact whose email or phone number this is (already normalised).
pub async fn find(
    platform: &Platform,
    account: &str,
    by: Identifier,
    value: &str,
) -> Result<Option<(Contact, u64)>, StoreError> {
    let Some(index) = platform
        .store
        .get(&keys::contact_by(account, by, value))
        .await?
    else {
        return Ok(None);
    };
    let id = index.body["contact_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    get(platform, account, &id).await
}

/// Finds the contact by `identifier` or creates it from the changes; an
/// existing contact takes the changes only when `update_existing`. Answers the
/// contact and whether it was created.
pub async fn upsert(
    platform: &Platform,
    account: &str,
    identifier: Identifier,
    changes: &Changes,
    update_existing: bool,
    received_at: DateTime<Utc>,
) -> Result<(Contact, bool), UpsertError> {
    let Some(key_value) = changes.identifier(identifier) else {
        return Err(UpsertError::Invalid(format!(
            "the payload has no {}: it is this trigger's identifier",
            identifier.as_str()
        )));
    };
    // Optimistic: read, decide, write all-or-nothing under conditions; a
    // concurrent writer makes the write fail and the loop decide again.
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let now = platform.clock.now();
        let found = find(platform, account, identifier, key_value).await?;
        let created = found.is_none();
        let (mut contact, cond) = match found {
            Some((c, _)) if !update_existing => return Ok((c, false)),
            Some((c, v)) => (c, Cond::Version(v)),
            None => (
                Contact {
                    id: ids::new_id(ID_PREFIX),
                    email: None,
                    phone_number: None,
                    name: None,
                    first_name: None,
                    last_name: None,
                    fields: Map::new(),
                    lists: Vec::new(),
                    changed_by_request_at: None,
                    created_at: now,
                    updated_at: now,
                },
                Cond::Absent,
            ),
        };
        let before_other = contact.identifier(identifier.other()).map(String::from);
        if contact
            .changed_by_request_at
            .is_some_and(|t| t > received_at)
        {
            // An older request than the one that last changed the contact:
            // it may fill what is empty, never overwrite what is newer.
            changes.fill_gaps(&mut contact, now);
        } else {
            changes.apply_to(&mut contact, now);
            contact.changed_by_request_at = Some(received_at);
        }
        let mut writes = vec![Write::Put(
            Put::new(
                keys::contact(account, &contact.id),
                serde_json::to_value(&contact).expect("serialisable"),
            )
            .when(cond),
        )];
        if created {
            writes.push(index_put(
                account,
                identifier,
                key_value,
                &contact.id,
                Cond::Absent,
            ));
        }
        // The other identifier is indexed too when nobody else holds it.
        let other = identifier.other();
        if let Some(value) = contact
            .identifier(other)
            .filter(|v| Some(*v) != before_other.as_deref())
        {
            let holder = platform
                .store
                .get(&keys::contact_by(account, other, value))
                .await?;
            match holder {
                None => writes.push(index_put(account, other, value, &contact.id, Cond::Absent)),
                Some(h) if h.body["contact_id"] == contact.id.as_str() => {}
                Some(_) => {} // another contact's: it keeps finding that one
            }
            if let Some(old) = before_other {
                let old_key = keys::contact_by(account, other, &old);
                if let Some(h) = platform
                    .store
                    .get(&old_key)
                    .await?
                    .filter(|h| h.body["contact_id"] == contact.id.as_str())
                {
                    writes.push(Write::Delete {
                        key: old_key,
                        cond: Cond::Version(h.version),
                    });
                }
            }
        }
        match platform.store.write_all(writes).await {
            Ok(()) => return Ok((contact, created)),
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Backend("the contact kept changing under concurrent updates".into()).into())
}

fn index_put(account: &str, by: Identifier, value: &str, contact_id: &str, cond: Cond) -> Write {
    Write::Put(
        Put::new(
            keys::contact_by(account, by, value),
            json!({ "contact_id": contact_id }),
        )
        .when(cond),
    )
}

/// Adds a list id to the contact's `lists`.
pub async fn add_list(
    platform: &Platform,
    account: &str,
    contact_id: &str,
    list_id: &str,
) -> Result<(), StoreError> {
    edit_lists(platform, account, contact_id, |lists| {
        let missing = !lists.iter().any(|l| l == list_id);
        if missing {
            lists.push(list_id.to_string());
        }
        missing
    })
    .await
}

/// Takes a (deleted) list id out of the contact's `lists`.
pub async fn remove_list(
    platform: &Platform,
    account: &str,
    contact_id: &str,
    list_id: &str,
) -> Result<(), StoreError> {
    edit_lists(platform, account, contact_id, |lists| {
        let before = lists.len();
        lists.retain(|l| l != list_id);
        lists.len() != before
    })
    .await
}

/// Changes the contact's `lists` under its version, retrying on concurrent
/// changes. `edit` answers whether it changed anything.
async fn edit_lists(
    platform: &Platform,
    account: &str,
    contact_id: &str,
    edit: impl Fn(&mut Vec<String>) -> bool,
) -> Result<(), StoreError> {
    for attempt in 0..OPTIMISTIC_ATTEMPTS {
        let Some((mut c, version)) = get(platform, account, contact_id).await? else {
            return Ok(());
        };
        if !edit(&mut c.lists) {
            return Ok(());
        }
        c.updated_at = platform.clock.now();
        let put = Put::new(
            keys::contact(account, contact_id),
            serde_json::to_value(&c).expect("serialisable"),
        )
        .when(Cond::Version(version));
        match platform.store.put(put).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => contention_pause(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(
        "the contact kept changing under concurrent updates".into(),
    ))
}

#[cfg(test)]
mod tests;

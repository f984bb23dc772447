//! Table layout and byte encodings of the embedded database.

use redb::{Database, Table, TableDefinition, WriteTransaction};

use super::EmbeddedError;

/// (pk, sk) as `pk 0x00 sk`: byte order sorts by pk, then sk.
pub const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");
/// Items that expire, by when: `expires_at (i64, big endian) ++ item key`.
/// Lets a sweep find what has expired without reading every item; an entry
/// may be stale (the item rewritten or deleted since): the item decides.
pub const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("expiry");

/// `expires_at` first, so that the table is in expiry order (a negative
/// time sorts first once its sign bit is flipped).
pub fn expiry_key(expires_at: i64, item_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + item_key.len());
    k.extend_from_slice(&((expires_at as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(item_key);
    k
}

/// The item key of an expiry entry, and when it was to expire.
pub fn decode_expiry_key(k: &[u8]) -> (i64, &[u8]) {
    let at = u64::from_be_bytes(k[..8].try_into().expect("8 bytes")) ^ (1 << 63);
    (at as i64, &k[8..])
}

/// Counters, kept apart from items so that `add` never decodes a document.
pub const COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("counters");
/// Where versions before the queue log kept queued messages
/// (`queue 0x00 id` -> message), and their visibility index; read once to
/// move what they hold into the log (`queue::import_legacy`).
pub const LEGACY_MESSAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("queue_messages");
pub const LEGACY_READY: TableDefinition<&[u8], ()> = TableDefinition::new("queue_ready");

pub fn create_tables(db: &Database) -> Result<(), EmbeddedError> {
    use redb::{ReadableDatabase, ReadableTable, TableHandle};
    let had_expiry = db
        .begin_read()?
        .list_tables()?
        .any(|t| t.name() == EXPIRY.name());
    let txn = db.begin_write()?;
    {
        let items = txn.open_table(ITEMS)?;
        txn.open_table(COUNTERS)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        // A file from before the index: index what it holds, once, so that
        // its expiring items are swept too.
        if !had_expiry {
            for entry in items.iter()? {
                let (k, v) = entry?;
                if let Some(at) = decode_item(v.value()).expires_at {
                    expiry.insert(expiry_key(at, k.value()).as_slice(), ())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Every table, opened once per write group: opening and closing a table in
/// a write transaction writes its root back, which per write was a large part
/// of a commit's cost.
pub struct Tables<'t> {
    pub items: Table<'t, &'static [u8], &'static [u8]>,
    pub counters: Table<'t, &'static [u8], &'static [u8]>,
    pub expiry: Table<'t, &'static [u8], ()>,
}

impl<'t> Tables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, EmbeddedError> {
        Ok(Self {
            items: txn.open_table(ITEMS)?,
            counters: txn.open_table(COUNTERS)?,
            expiry: txn.open_table(EXPIRY)?,
        })
    }
}

pub fn compound(a: &str, b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b);
    k
}

const NO_EXPIRY: i64 = i64::MIN;

pub struct StoredItem<'a> {
    pub version: u64,
    pub expires_at: Option<i64>,
    pub body: &'a [u8],
}

pub fn encode_item(version: u64, expires_at: Option<i64>, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + body.len());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&expires_at.unwrap_or(NO_EXPIRY).to_le_bytes());
    v.extend_from_slice(body);
    v
}

pub fn decode_item(bytes: &[u8]) -> StoredItem<'_> {
    let version = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
    let exp = i64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    StoredItem {
        version,
        expires_at: (exp != NO_EXPIRY).then_some(exp),
        body: &bytes[16..],
    }
}

pub fn encode_counter(n: i64, expires_at: Option<i64>) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[0..8].copy_from_slice(&n.to_le_bytes());
    v[8..16].copy_from_slice(&expires_at.unwrap_or(NO_EXPIRY).to_le_bytes());
    v
}

pub fn decode_counter(bytes: &[u8]) -> (i64, Option<i64>) {
    let n = i64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
    let exp = i64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    (n, (exp != NO_EXPIRY).then_some(exp))
}

pub struct LegacyMessage<'a> {
    pub visible_at: i64,
    pub receive_count: u32,
    pub body: &'a [u8],
}

/// `visible_at i64, receive_count u32, body`, little endian.
pub fn decode_legacy_message(bytes: &[u8]) -> LegacyMessage<'_> {
    LegacyMessage {
        visible_at: i64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
        receive_count: u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        body: &bytes[12..],
    }
}

//! Messages that builds before the queue log kept in the database file.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use ulid::Ulid;

use super::io_error;
use super::records::{Lane, Message, Messages, Record, replay};
use crate::adapters::embedded::codec;
use crate::adapters::embedded::{Embedded, EmbeddedError};

/// Moves the messages that versions before the queue log kept in the
/// database file (queue `name` and its `name.dead`) into the log at `log`,
/// then out of the database. Run before the queue opens; answers how many
/// moved. Stopped part-way, it moves the same messages again next time, and
/// replaying a message twice keeps it once.
pub fn import_legacy(db: &Embedded, name: &str, log: &Path) -> Result<usize, EmbeddedError> {
    use redb::{ReadableTableMetadata, TableError};
    let read = db.begin_read()?;
    let table = match read.open_table(codec::LEGACY_MESSAGES) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for (lane, queue) in [
        (Lane::Main, name.to_string()),
        (Lane::Dead, format!("{name}.dead")),
    ] {
        let prefix = codec::compound(&queue, b"");
        for entry in table.range::<&[u8]>(prefix.as_slice()..)? {
            let (k, v) = entry?;
            let Some(id) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            // Not `unwrap_or_default`, as clippy suggests: that is the nil id.
            #[allow(clippy::unwrap_or_default)]
            let id = std::str::from_utf8(id)
                .ok()
                .and_then(|id| Ulid::from_string(id).ok())
                .unwrap_or_else(Ulid::new);
            let m = codec::decode_legacy_message(v.value());
            Record::Put {
                id: id.0,
                m: Message {
                    lane,
                    visible_at: m.visible_at,
                    receive_count: m.receive_count,
                    body: String::from_utf8_lossy(m.body).into(),
                    in_flight: false,
                    receipt: 0,
                },
            }
            .encode(&mut records);
            keys.push(k.value().to_vec());
        }
    }
    drop((table, read));
    if keys.is_empty() {
        return Ok(0);
    }
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(log, e))?;
    }
    // After the log's records, not at the end of the file: a log the queue
    // has had open is allocated ahead, and replay stops at those zeros.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(log)
        .map_err(|e| io_error(log, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .and_then(|_| {
            let end = replay(&bytes, &mut Messages::default()) as u64;
            file.set_len(end)?;
            file.seek(SeekFrom::Start(end))?;
            file.write_all(&records)?;
            file.sync_all()
        })
        .map_err(|e| io_error(log, e))?;
    let txn = db.database()?.begin_write()?;
    {
        let mut messages = txn.open_table(codec::LEGACY_MESSAGES)?;
        for k in &keys {
            messages.remove(k.as_slice())?;
        }
        if messages.is_empty()? {
            drop(messages);
            txn.delete_table(codec::LEGACY_MESSAGES)?;
            txn.delete_table(codec::LEGACY_READY)?;
        }
    }
    txn.commit()?;
    tracing::info!(messages = keys.len(), log = %log.display(), "moved queued messages into the queue log");
    Ok(keys.len())
}

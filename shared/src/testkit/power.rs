//! A disk that can lose power, for the store (a redb `StorageBackend`) and
//! for a queue log (a `LogMedium`): what was written but not yet synced is
//! forgotten when `cut` is called, as a power loss forgets the page cache
//! (which SIGKILL does not). Handles opened before a cut fail afterwards, as
//! the process that held them would be gone.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::adapters::embedded::media::LogMedium;

#[derive(Default)]
struct State {
    /// What survives a cut.
    durable: Vec<u8>,
    /// What reads see: the durable bytes and every write since.
    volatile: Vec<u8>,
    /// Bumped by each cut; handles of an older one are dead.
    generation: u64,
    /// False: syncs do nothing, as if a sync were removed from the code.
    syncs: bool,
    /// Writes fail as on a full disk.
    full: bool,
}

/// One disk (one file's worth of bytes).
#[derive(Clone)]
pub struct Disk(Arc<Mutex<State>>);

impl Default for Disk {
    fn default() -> Self {
        Self::new()
    }
}

impl Disk {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(State {
            syncs: true,
            ..State::default()
        })))
    }

    /// A disk whose syncs do nothing: what a missing sync would leave.
    pub fn without_syncs() -> Self {
        let disk = Self::new();
        disk.lock().syncs = false;
        disk
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes fail as on a full disk (until `set_full(false)`).
    pub fn set_full(&self, full: bool) {
        self.lock().full = full;
    }

    /// The power goes: unsynced writes are gone, open handles dead.
    pub fn cut(&self) {
        let mut s = self.lock();
        s.volatile = s.durable.clone();
        s.generation += 1;
    }

    fn handle(&self) -> Handle {
        Handle {
            disk: self.clone(),
            generation: self.lock().generation,
        }
    }

    /// The disk as a redb backend.
    pub fn backend(&self) -> DiskBackend {
        DiskBackend(self.handle())
    }

    /// How one process opens the disk as a redb backend, again after a
    /// failure too: after a cut the process is gone, so what it opens then
    /// is dead as well. (Opened afresh instead, a store the cut left behind
    /// would write beside the next process's, as no real one can.)
    pub fn backends(&self) -> impl Fn() -> DiskBackend + Send + Sync + 'static {
        let born = self.handle();
        move || {
            DiskBackend(Handle {
                disk: born.disk.clone(),
                generation: born.generation,
            })
        }
    }

    /// The disk as a queue log.
    pub fn medium(&self) -> DiskMedium {
        DiskMedium {
            handle: self.handle(),
            at: 0,
        }
    }
}

struct Handle {
    disk: Disk,
    generation: u64,
}

impl Handle {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> io::Result<R>) -> io::Result<R> {
        let mut s = self.disk.lock();
        if s.generation != self.generation {
            return Err(io::Error::other("the power is off"));
        }
        f(&mut s)
    }

    /// `with`, for a write: refused while the disk is full.
    fn write<R>(&self, f: impl FnOnce(&mut State) -> io::Result<R>) -> io::Result<R> {
        self.with(|s| {
            if s.full {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            f(s)
        })
    }
}

fn write_at(bytes: &mut Vec<u8>, at: usize, data: &[u8]) {
    if bytes.len() < at + data.len() {
        bytes.resize(at + data.len(), 0);
    }
    bytes[at..at + data.len()].copy_from_slice(data);
}

fn sync(s: &mut State) {
    if s.syncs {
        let State {
            durable, volatile, ..
        } = s;
        durable.clone_from(volatile);
    }
}

pub struct DiskBackend(Handle);

impl std::fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiskBackend")
    }
}

impl redb::StorageBackend for DiskBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.0.with(|s| Ok(s.volatile.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.0.with(|s| {
            let at = offset as usize;
            let bytes = s
                .volatile
                .get(at..at + out.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            out.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.write(|s| {
            s.volatile.resize(len as usize, 0);
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.0.write(|s| {
            sync(s);
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.0.write(|s| {
            write_at(&mut s.volatile, offset as usize, data);
            Ok(())
        })
    }
}

pub struct DiskMedium {
    handle: Handle,
    /// Where the next append goes.
    at: usize,
}

impl LogMedium for DiskMedium {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        self.handle.with(|s| Ok(s.volatile.clone()))
    }

    fn resume_at(&mut self, len: u64, drop_rest: bool) -> io::Result<()> {
        self.at = len as usize;
        self.handle.with(|s| {
            if drop_rest {
                s.volatile.truncate(len as usize);
            }
            Ok(())
        })
    }

    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let at = self.at;
        self.handle.write(|s| {
            write_at(&mut s.volatile, at, buf);
            Ok(())
        })?;
        self.at += buf.len();
        Ok(())
    }

    fn allocate(&mut self, len: u64) -> io::Result<()> {
        self.handle.write(|s| {
            if s.volatile.len() < len as usize {
                s.volatile.resize(len as usize, 0);
            }
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.handle.write(|s| {
            sync(s);
            Ok(())
        })
    }

    /// Atomic and durable, as the file's rename is.
    fn replace(&mut self, snapshot: &[u8]) -> io::Result<()> {
        self.handle.write(|s| {
            s.volatile = snapshot.to_vec();
            s.durable = snapshot.to_vec();
            Ok(())
        })?;
        self.at = snapshot.len();
        Ok(())
    }
}

/// An embedded platform whose store and apply queue are on these disks.
pub fn platform_on(
    store: &Disk,
    queue: &Disk,
    settings: crate::config::Settings,
    clock: std::sync::Arc<dyn crate::ports::Clock>,
) -> Result<std::sync::Arc<crate::Platform>, crate::adapters::embedded::EmbeddedError> {
    use crate::adapters::embedded::{Embedded, EmbeddedError, EmbeddedQueue, EmbeddedStore};
    use std::sync::Arc;
    let db = Embedded::open_on(store.backends(), clock.clone())?;
    let apply = EmbeddedQueue::open_on(
        Box::new(queue.medium()),
        crate::platform::APPLY_MAX_RECEIVES,
        clock.clone(),
        64 << 20,
    )
    .map_err(|e| EmbeddedError::Db(e.to_string()))?;
    Ok(crate::Platform::new(
        Arc::new(EmbeddedStore::new(db)),
        crate::platform::Queues::single(Arc::new(apply)),
        clock,
        settings,
    ))
}

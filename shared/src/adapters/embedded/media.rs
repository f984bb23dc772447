//! Where a queue log's bytes live: a file, or (for tests) a disk that can
//! lose power. The log only ever appends, syncs, and replaces itself
//! whole, so that is all a medium does.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` as the new file `path` (refused if it exists), durably:
/// the file and its directory entry are synced. A file cut short is removed.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub trait LogMedium: Send + 'static {
    /// Everything the medium holds, from the start.
    fn read_all(&mut self) -> std::io::Result<Vec<u8>>;
    /// Appends go at `len` from now on; what follows it is dropped when
    /// `drop_rest` (a record cut short), kept otherwise (zeros allocated ahead).
    fn resume_at(&mut self, len: u64, drop_rest: bool) -> std::io::Result<()>;
    /// Appends after what is there (or after `truncate`'s length).
    fn append(&mut self, buf: &[u8]) -> std::io::Result<()>;
    /// Reserves room up to `len` bytes, where the medium can.
    fn allocate(&mut self, len: u64) -> std::io::Result<()>;
    /// Makes every append so far durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// Replaces the whole content by `snapshot`, atomically and durably.
    fn replace(&mut self, snapshot: &[u8]) -> std::io::Result<()>;
}

/// A log file, locked for this process.
pub struct FileMedium {
    path: PathBuf,
    file: File,
}

impl FileMedium {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.try_lock()
            .map_err(|_| std::io::Error::other("another process has it open"))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl LogMedium for FileMedium {
    fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn resume_at(&mut self, len: u64, drop_rest: bool) -> std::io::Result<()> {
        if drop_rest {
            self.file.set_len(len)?;
        }
        self.file.seek(SeekFrom::Start(len))?;
        Ok(())
    }

    fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }

    /// Blocks allocated ahead (on Linux): a sync then writes less metadata.
    fn allocate(&mut self, len: u64) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let len = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
            // SAFETY: a valid open descriptor and a range within off_t.
            match unsafe { libc::posix_fallocate(self.file.as_raw_fd(), 0, len) } {
                0 | libc::EOPNOTSUPP | libc::EINVAL => {}
                errno => return Err(std::io::Error::from_raw_os_error(errno)),
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = len;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// A new file written and synced beside the log, renamed over it, and
    /// the directory synced.
    fn replace(&mut self, snapshot: &[u8]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("compacting");
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all(snapshot)?;
            file.sync_all()?;
            file.try_lock().map_err(std::io::Error::other)?;
            std::fs::rename(&tmp, &self.path)?;
            Ok::<_, std::io::Error>(file)
        })();
        // A snapshot cut short (a full disk) must not keep the space it took.
        let file = written.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = file;
        Ok(())
    }
}

//! The control socket of a running server, `control.sock` in its data
//! directory (owner only): `hookline backup` asks the server that holds the
//! data directory to copy it. One request a connection, one JSON line each
//! way: `{"backup": "/abs/dir"}` -> `{"ok": {"entries": .., "messages": ..}}`
//! or `{"error": "..."}`.

use hookline::adapters::embedded::{Copied, DataDir, EmbeddedError};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::watch;

pub const SOCKET: &str = "control.sock";
/// The longest request line read.
const MAX_REQUEST: u64 = 16 * 1024;
/// Time a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on the data directory's control socket (replacing one left by a
/// process that is gone: this one holds the directory's lock).
pub fn listen(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = data_dir.join(SOCKET);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers control requests until `shutdown` turns true, then waits for
/// those under way; one backup at a time, for this user only.
pub async fn serve(
    listener: UnixListener,
    data: Arc<DataDir>,
    mut shutdown: watch::Receiver<bool>,
) {
    let busy = Arc::new(tokio::sync::Mutex::new(()));
    let mut running = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // The socket's mode is set just after it is made: the peer decides.
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == me || peer.uid() == 0 => {}
            _ => {
                tracing::warn!("control socket: a connection from another user refused");
                continue;
            }
        }
        while running.try_join_next().is_some() {}
        let (data, busy) = (data.clone(), busy.clone());
        running.spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader =
                tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
            let answer = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
                .await
            {
                Err(_) => Err("no request within 10 s".to_string()),
                Ok(Err(e)) => Err(format!("reading the request: {e}")),
                Ok(Ok(_)) => match busy.try_lock() {
                    Err(_) => Err("a backup is running already; try again once it is done".into()),
                    Ok(_held) => handle(&line, data).await,
                },
            };
            let answer = match answer {
                Ok(copied) => serde_json::json!({"ok": copied}),
                Err(error) => serde_json::json!({"error": error}),
            };
            let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
    // A backup under way finishes, and its asker hears so.
    while running.join_next().await.is_some() {}
}

async fn handle(line: &str, data: Arc<DataDir>) -> Result<Copied, String> {
    let request: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON request: {e}"))?;
    let to = request["backup"]
        .as_str()
        .ok_or("the only request is {\"backup\": \"/absolute/dir\"}")?;
    let to = PathBuf::from(to);
    if !to.is_absolute() {
        return Err(format!("{} is not an absolute path", to.display()));
    }
    tracing::info!(to = %to.display(), "backup started");
    let copied = tokio::task::spawn_blocking(move || data.backup(&to))
        .await
        .map_err(|e| format!("the backup stopped: {e}"))??;
    tracing::info!(
        entries = copied.entries,
        messages = copied.messages,
        "backup written"
    );
    Ok(copied)
}

/// `hookline backup`: asks the server on `data_dir` for the copy, or makes
/// it here when no server runs there. Answers what was copied, as printed.
pub fn backup(data_dir: &Path, to: &Path) -> Result<String, String> {
    let to = std::path::absolute(to).map_err(|e| format!("{}: {e}", to.display()))?;
    if let Ok(stream) = UnixStream::connect(data_dir.join(SOCKET)) {
        return ask(stream, &to);
    }
    // No server there (or one that is gone, or a path too long for a
    // socket): the directory is ours, unless a server holds it anyway.
    if !data_dir
        .join(hookline::adapters::embedded::STORE_FILE)
        .exists()
    {
        return Err(format!("{} holds no Hookline data", data_dir.display()));
    }
    let data = DataDir::open(
        data_dir,
        hookline::platform::APPLY_MAX_RECEIVES,
        Arc::new(hookline::ports::SystemClock),
    )
    .map_err(|e| match e {
        EmbeddedError::InUse => format!(
            "a server has {} open but answers no backup on its control socket ({SOCKET}: \
             its path may be too long for a socket, or the server is still starting); \
             stop it and run the backup again",
            data_dir.display()
        ),
        e => format!("cannot open {}: {e}", data_dir.display()),
    })?;
    data.backup(&to).map(|c| describe(&c, &to))
}

fn ask(mut stream: UnixStream, to: &Path) -> Result<String, String> {
    let to_str = to
        .to_str()
        .ok_or("the backup directory's path is not UTF-8")?;
    let request = serde_json::json!({"backup": to_str});
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("asking the server: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("the server's answer: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&line)
        .map_err(|_| format!("the server answered no backup (it stopped?): {line:?}"))?;
    if let Some(error) = answer["error"].as_str() {
        return Err(error.to_string());
    }
    let copied = Copied {
        entries: answer["ok"]["entries"].as_u64().unwrap_or(0),
        messages: answer["ok"]["messages"].as_u64().unwrap_or(0) as usize,
    };
    Ok(describe(&copied, to))
}

fn describe(c: &Copied, to: &Path) -> String {
    format!(
        "backup written to {}: {} store entries, {} queued messages; start it with `hookline serve --data-dir {}`",
        to.display(),
        c.entries,
        c.messages,
        to.display()
    )
}

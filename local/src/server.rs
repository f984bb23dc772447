//! The HTTP server of `hookline serve`: the router on hyper, with the
//! bounds a public server needs that `axum::serve` leaves out. A client
//! that sends its headers slowly is cut off; idle keep-alive connections
//! are closed; at most `max_connections` are open at once (past it the
//! listener waits, so the data directory's files always have descriptors).
//! A client that stops reading its answer is cut off too. Bodies, their
//! sizes and the time a request may take are bounded by the router itself
//! (`hookline::http`), on both hosts.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers, and to start the next request on a
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// Time requests in flight get to finish when the server stops.
    pub drain: Duration,
    /// Time a write of the answer may wait on a client that does not read.
    pub write_timeout: Duration,
}

impl Limits {
    /// Connections for a process allowed `open_files` descriptors: a
    /// quarter are kept for the store, the queue log and accepting.
    pub fn for_open_files(open_files: u64) -> Self {
        let spare = open_files.saturating_sub(64) * 3 / 4;
        Self {
            max_connections: spare.clamp(16, 10_000) as usize,
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The soft limit on this process's open files.
pub fn open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut warned = false;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("never closed"),
        };
        if permits.available_permits() == 0 && !warned {
            tracing::warn!(
                max = limits.max_connections,
                "connection limit reached; new connections wait"
            );
            warned = true;
        }
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let stream = WriteTimeout::new(stream, limits.write_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain time were cut off");
    }
}

/// A connection whose writes must make progress within `timeout`: a client
/// that stops reading (a zero window) fails the write instead of holding
/// its connection, and a connection slot, forever.
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// `Pending` for now, or an error once writes have waited too long.
    fn waited<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.waited(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.waited(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.waited(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_timeout() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut conn = WriteTimeout::new(near, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = conn.write_all(&[7u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5));

        // A reader that keeps up, however slowly overall, is never cut off.
        let (near, far2) = tokio::io::duplex(1024);
        let mut conn = WriteTimeout::new(near, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut far2 = far2;
            let mut got = 0;
            let mut buf = [0u8; 512];
            while got < 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                got += far2.read(&mut buf).await.unwrap();
            }
            got
        });
        conn.write_all(&[1u8; 16 * 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 16 * 1024);
        let _ = far.read(&mut [0u8; 1]).await;
    }
}

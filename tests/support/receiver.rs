//! A webhook receiver for the tests: a plain HTTP/1.1 server on a loopback
//! port that records every request and answers each as it is told (a
//! status, 429 with Retry-After, a hang past the timeout, a reset
//! connection, an answer trickled byte by byte), 200 when told nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// 429 with `Retry-After: secs`.
    RetryAfter(u64),
    /// Reads the request and answers nothing for this long.
    Hang(Duration),
    /// Reads the request and closes the connection without an answer.
    Reset,
    /// 200, the whole answer written a byte every `gap`.
    Trickle(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The form (or query) fields.
    pub fn form(&self) -> HashMap<String, String> {
        let text = if self.method == "GET" {
            self.query.as_bytes().to_vec()
        } else {
            self.body.clone()
        };
        url::form_urlencoded::parse(&text).into_owned().collect()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Replies to come, by path; past them, 200.
    plans: HashMap<String, VecDeque<Reply>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Receiver { base, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next requests to `path` get these replies, in order.
    pub fn plan(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .plans
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `path` got `n` requests (or more); answers them.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received_at(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} requests of {n} within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let reply = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            method,
            path: path.clone(),
            query,
            headers,
            body: buf[head_end..head_end + length].to_vec(),
            at: Instant::now(),
        });
        s.plans
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Status(200))
    };
    let answer = |status: u16, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    match reply {
        Reply::Status(s) => {
            let body = format!("{{\"answered\": {s}}}");
            let _ = stream.write_all(answer(s, "", &body).as_bytes()).await;
        }
        Reply::RetryAfter(secs) => {
            let extra = format!("retry-after: {secs}\r\n");
            let _ = stream
                .write_all(answer(429, &extra, "slow down").as_bytes())
                .await;
        }
        Reply::Hang(d) => tokio::time::sleep(d).await,
        Reply::Reset => {
            // SO_LINGER 0: closing sends a RST, not a FIN.
            use std::os::fd::AsRawFd;
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and option of the right size.
            unsafe {
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
            return;
        }
        Reply::Trickle(gap) => {
            for b in answer(200, "", "trickled answer").bytes() {
                tokio::time::sleep(gap).await;
                if stream.write_all(&[b]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

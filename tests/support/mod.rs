//! Starts the real `hookline` binary on a free loopback port and talks to it
//! over HTTP, as a user would.

#![allow(dead_code)] // each test file uses part of the harness

pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// The admin key the server printed on this start, if it printed one.
    pub printed_key: Option<String>,
    /// The operator key, when this start printed one.
    pub printed_operator_key: Option<String>,
    pub data_dir: PathBuf,
    lines: Receiver<String>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookline")
}

impl Server {
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::try_start(data_dir, env).unwrap_or_else(|e| panic!("hookline did not start: {e}"))
    }

    pub fn try_start(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("HOOKLINE_ADMIN_KEY")
            .env_remove("HOOKLINE_DATA_DIR")
            .env("HOOKLINE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary()))?;
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx); // the readers hold the only senders: their end is the child's end
        let mut printed_key = None;
        let mut printed_operator_key = None;
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if line.starts_with("Admin key of the default account")
                        && let Some(key) = line.split("(shown once; keep it): ").nth(1)
                    {
                        printed_key = Some(key.trim().to_string());
                    }
                    if let Some(key) = line.strip_prefix("Operator key (shown once; keep it): ") {
                        printed_operator_key = Some(key.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("hookline listening on ") {
                        return Ok(Server {
                            child: Some(child),
                            base: addr.trim().to_string(),
                            printed_key,
                            printed_operator_key,
                            data_dir: data_dir.to_path_buf(),
                            lines,
                        });
                    }
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    return Err(format!("no 'listening' line within 60 s; output: {seen:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map_err(|e| e.to_string())?;
                    return Err(format!("exited with {status}; output: {seen:?}"));
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, as Ctrl-C or a service manager would; answers the exit status
    /// and everything printed meanwhile.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = self.lines.try_iter().collect();
                return (status, out);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("hookline did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: a crash, with no chance to clean up.
    pub fn crash(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client that never goes through a proxy, for loopback.
pub fn client() -> reqwest::Client {
    hookline::egress::install_tls();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A running server with its admin key, and the calls the tests make.
pub struct Admin {
    pub server: Server,
    pub key: String,
    pub http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789";

impl Admin {
    pub fn start() -> Admin {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = Self::start_in(dir.path());
        admin._dir = Some(dir);
        admin
    }

    /// A server with `env` besides the admin key, in a new data directory.
    pub fn start_with(env: &[(&str, &str)]) -> Admin {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = Self::start_in_with(dir.path(), env);
        admin._dir = Some(dir);
        admin
    }

    /// A server with `env` besides the admin key, keeping its data in `data_dir`.
    pub fn start_in_with(data_dir: &Path, env: &[(&str, &str)]) -> Admin {
        let mut all = vec![("HOOKLINE_ADMIN_KEY", ADMIN_KEY)];
        all.extend_from_slice(env);
        Admin {
            server: Server::start(data_dir, &all),
            key: ADMIN_KEY.into(),
            http: client(),
            _dir: None,
        }
    }

    /// A server keeping its data in `data_dir`.
    pub fn start_in(data_dir: &Path) -> Admin {
        let server = Server::start(data_dir, &[("HOOKLINE_ADMIN_KEY", ADMIN_KEY)]);
        Admin {
            server,
            key: ADMIN_KEY.into(),
            http: client(),
            _dir: None,
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates something and answers its JSON, failing the test otherwise.
    pub async fn create(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, v) = self.post(path, body).await;
        assert_eq!(status, 201, "POST {path}: {v}");
        v
    }

    /// POSTs JSON to a trigger URL (no admin key), with extra headers.
    pub async fn hook(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(url).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        answer(req.send().await.unwrap()).await
    }

    /// The request's log entry once the apply worker has written it.
    pub async fn applied(&self, trigger: &str, request: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, v) = self
                .get(&format!("/v1/triggers/{trigger}/requests/{request}"))
                .await;
            if status == 200 {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "request {request} not applied within 15 s: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Admin {
    /// Waits until every one of `requests` to `trigger` is applied (two
    /// minutes at most in all).
    pub async fn all_applied(&self, trigger: &str, requests: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for request in requests {
            loop {
                let (status, v) = self
                    .get(&format!("/v1/triggers/{trigger}/requests/{request}"))
                    .await;
                if status == 200 && v["status"] == "applied" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "request {request} not applied: {status} {v}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn answer(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

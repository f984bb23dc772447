//! Starts the real `hookline` binary on a free loopback port and talks to it
//! over HTTP, as a user would.

#![allow(dead_code)]

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
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(key) = line.split("(shown once; keep it): ").nth(1) {
                        printed_key = Some(key.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("hookline listening on ") {
                        return Ok(Server {
                            child: Some(child),
                            base: addr.trim().to_string(),
                            printed_key,
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
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

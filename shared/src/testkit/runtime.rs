//! A local Lambda Runtime API, enough to run a function's real `bootstrap`
//! as Lambda runs it: the binary polls `GET .../invocation/next`, gets an
//! event, and posts its answer (or error) back. Also notes when the first
//! poll came, for the cold-start benchmark.
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::path::Path as FsPath;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

/// What a function answered to an invocation.
#[derive(Debug)]
pub enum Answer {
    Response(Value),
    /// `.../error` or `.../init/error`: its error document.
    Error(Value),
}

#[derive(Default)]
struct Inner {
    pending: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_poll: Mutex<Option<Instant>>,
    polled: Notify,
    init_error: Mutex<Option<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Runtime API, listening on a loopback port until dropped.
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    lock(&inner.first_poll).get_or_insert_with(Instant::now);
    inner.polled.notify_waiters();
    let (id, event) = loop {
        let queued = inner.queued.notified();
        if let Some(e) = lock(&inner.pending).pop_front() {
            break e;
        }
        queued.await;
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    };
    set(&mut headers, "lambda-runtime-aws-request-id", id);
    set(
        &mut headers,
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string(),
    );
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:hookline".into(),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn answered(inner: &Inner, id: &str, answer: Answer) -> StatusCode {
    match lock(&inner.waiting).remove(id) {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

async fn response(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answered(&inner, &id, Answer::Response(json(&body)))
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answered(&inner, &id, Answer::Error(json(&body)))
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *lock(&inner.init_error) = Some(json(&body));
    inner.polled.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("its address").to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            inner,
            server,
        }
    }

    /// When the function first asked for work (its init done), or its init
    /// error, waiting up to `within`.
    pub async fn first_poll(&self, within: Duration) -> Result<Instant, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let polled = self.inner.polled.notified();
            if let Some(at) = *lock(&self.inner.first_poll) {
                return Ok(at);
            }
            if let Some(e) = lock(&self.inner.init_error).clone() {
                return Err(format!("init failed: {e}"));
            }
            if tokio::time::timeout_at(deadline, polled).await.is_err() {
                return Err(format!("no poll within {within:?}"));
            }
        }
    }

    /// Hands `event` to the function and waits up to `within` for its answer.
    pub async fn invoke(&self, event: Value, within: Duration) -> Result<Answer, String> {
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.waiting).insert(id.clone(), tx);
        lock(&self.inner.pending).push_back((id.clone(), event));
        self.inner.queued.notify_one();
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                lock(&self.inner.waiting).remove(&id);
                // Not handed out yet: not to be, to the next poll.
                lock(&self.inner.pending).retain(|(queued, _)| *queued != id);
                if let Some(e) = lock(&self.inner.init_error).clone() {
                    return Err(format!("init failed: {e}"));
                }
                Err(format!("no answer within {within:?}"))
            }
        }
    }
}

/// A function's `bootstrap` running against a [`RuntimeApi`]; killed when
/// dropped.
pub struct Function {
    pub child: Child,
    /// When it was started.
    pub started: Instant,
}

impl Function {
    /// Starts `binary` as Lambda would: the Runtime API's address, the
    /// function's name and memory, and `env` (its configuration). Through
    /// `$HOOKLINE_LAMBDA_RUNNER` when set (`qemu-aarch64 -L
    /// /usr/aarch64-linux-gnu`: the arm64 bootstraps that are deployed).
    pub fn start(binary: &FsPath, api: &RuntimeApi, env: &[(String, String)]) -> Self {
        let runner = std::env::var("HOOKLINE_LAMBDA_RUNNER").unwrap_or_default();
        let mut runner = runner.split_whitespace();
        let mut cmd = match runner.next() {
            Some(program) => {
                // Found on this process's PATH: the child's environment is
                // cleared before it is looked up.
                let found = std::env::var_os("PATH")
                    .iter()
                    .flat_map(std::env::split_paths)
                    .map(|dir| dir.join(program))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| program.into());
                let mut cmd = Command::new(found);
                cmd.args(runner).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "hookline")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/hookline/test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let started = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        Self { child, started }
    }

    /// Its peak resident memory so far, in KiB (Linux's `VmHWM`).
    pub fn peak_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a function's binary is: under `$HOOKLINE_LAMBDA_BIN_DIR` when set,
/// as `<name>/bootstrap` (the zips `scripts/lambda.sh` builds, unpacked)
/// or `<name>` (a host release build, for the benchmark); else the one
/// cargo built for this test (`fallback`, `env!("CARGO_BIN_EXE_<name>")`).
pub fn binary(name: &str, fallback: &str) -> std::path::PathBuf {
    match std::env::var_os("HOOKLINE_LAMBDA_BIN_DIR") {
        Some(dir) => {
            let dir = std::path::Path::new(&dir);
            let bootstrap = dir.join(name).join("bootstrap");
            if bootstrap.is_file() {
                bootstrap
            } else {
                dir.join(name)
            }
        }
        None => fallback.into(),
    }
}

/// A function started against a Runtime API of its own, its init done.
pub struct Running {
    pub api: RuntimeApi,
    pub function: Function,
    /// From its start to its first poll (its init).
    pub init: Duration,
    /// Its binary, named in failures.
    pub binary: std::path::PathBuf,
}

impl Running {
    pub async fn start(binary: &FsPath, env: &[(String, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let mut function = Function::start(binary, &api, env);
        // Watching the process too: a `main` that fails before the runtime
        // starts posts no init error, it exits.
        let deadline = Instant::now() + Duration::from_secs(30);
        let polled = loop {
            match api.first_poll(Duration::from_millis(100)).await {
                Ok(at) => break at,
                Err(e) if e.starts_with("init failed") => panic!("{}: {e}", binary.display()),
                Err(_) => {}
            }
            if let Ok(Some(status)) = function.child.try_wait() {
                panic!(
                    "{} exited before its first poll: {status}",
                    binary.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no poll within 30 s",
                binary.display()
            );
        };
        let init = polled.duration_since(function.started);
        Self {
            api,
            function,
            init,
            binary: binary.to_path_buf(),
        }
    }

    /// The function's answer to `event` (JSON text, as in `events/`); an
    /// error it reports fails the caller.
    pub async fn answer(&self, event: &str) -> Value {
        let event: Value = serde_json::from_str(event).expect("an event fixture is JSON");
        match self.api.invoke(event, Duration::from_secs(30)).await {
            Ok(Answer::Response(v)) => v,
            Ok(Answer::Error(e)) => panic!(
                "{}: the function reported an error: {e}",
                self.binary.display()
            ),
            Err(e) => panic!("{}: {e}", self.binary.display()),
        }
    }
}

//! moto (the DynamoDB + SQS emulator) served over HTTP on free loopback ports,
//! started once per test binary. Missing moto fails the test that needs it:
//! the test command installs it (see README), so absence is a broken machine.
//!
//! Two servers, because moto's DynamoDB keeps no locks: `moto_server` answers
//! on many threads, and two conditional writes of one item can then both pass
//! their condition, which DynamoDB never allows. DynamoDB tests therefore use
//! moto's same server application on one thread (requests serialised, so each
//! write is atomic as on DynamoDB); SQS tests use `moto_server` itself, whose
//! threads let long polls wait without holding up other requests.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct MotoServer {
    pub endpoint: String,
}

static THREADED: OnceLock<Result<MotoServer, String>> = OnceLock::new();
static SERIAL: OnceLock<Result<MotoServer, String>> = OnceLock::new();

/// moto's own server application (as `moto_server` builds it), on one thread.
const SERIAL_SERVER: &str = "import sys\n\
from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)\n";

impl MotoServer {
    /// `moto_server` (threaded), for SQS; panics with the reason when it
    /// cannot be started.
    pub fn shared() -> &'static MotoServer {
        expect(THREADED.get_or_init(|| {
            start(|port| {
                let mut cmd = Command::new("moto_server");
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                cmd
            })
        }))
    }

    /// moto on one thread, for DynamoDB (see the module's comment).
    pub fn serialized() -> &'static MotoServer {
        expect(SERIAL.get_or_init(|| {
            start(|port| {
                let mut cmd = Command::new("python3");
                cmd.args(["-c", SERIAL_SERVER, &port.to_string()])
                    .env("MOTO_PORT", port.to_string());
                cmd
            })
        }))
    }
}

fn expect(server: &Result<MotoServer, String>) -> &MotoServer {
    match server {
        Ok(server) => server,
        Err(e) => panic!("moto is required for this test and could not start: {e}"),
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn start(command: impl FnOnce(u16) -> Command + Send + 'static) -> Result<MotoServer, String> {
    let port = free_port()?;
    // Spawned from a thread that lives as long as the process: the child is
    // sent SIGTERM when its parent thread ends (PR_SET_PDEATHSIG), so no
    // moto_server outlives the tests.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("moto-server".into())
        .spawn(move || {
            let mut cmd = command(port);
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(()));
                    let status = child.wait();
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    eprintln!("moto exited: {status:?} {err}");
                }
                Err(e) => {
                    let _ = tx.send(Err(format!(
                        "cannot run moto_server ({e}); install it with: pip install 'moto[server]'"
                    )));
                }
            }
            // Keep this thread, the child's parent, alive until the process ends.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())??;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(MotoServer {
                endpoint: format!("http://127.0.0.1:{port}"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "moto_server did not listen on port {port} within 30 s"
    ))
}

#[cfg(feature = "aws")]
pub mod aws {
    //! SDK clients pointed at the shared moto server, and fresh tables and
    //! queues for one test each.

    use super::MotoServer;
    use crate::adapters::aws::{self, DynamoStore, SqsQueue};
    use crate::ports::Clock;
    use std::sync::Arc;

    pub async fn config(moto: &MotoServer) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(aws::https_client())
            .timeout_config(aws::timeouts(aws::ANSWER_WITHIN))
            .endpoint_url(&moto.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    fn unique(prefix: &str) -> String {
        format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
    }

    /// A new table with the production key schema.
    pub async fn store(clock: Arc<dyn Clock>) -> (DynamoStore, String) {
        let config = config(MotoServer::serialized()).await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("hookline");
        aws::create_table(&client, &table)
            .await
            .expect("create table on moto");
        (DynamoStore::new(client, &table, clock), table)
    }

    /// A platform on a new table and queues of the shared moto server, as
    /// a Lambda function builds it from its environment.
    pub async fn platform() -> Arc<crate::Platform> {
        platform_with(crate::config::Settings::default()).await
    }

    /// `platform`, with these settings.
    pub async fn platform_with(settings: crate::config::Settings) -> Arc<crate::Platform> {
        let clock: Arc<dyn Clock> = Arc::new(crate::ports::SystemClock);
        let (store, _) = store(clock.clone()).await;
        crate::Platform::new(Arc::new(store), queues().await, clock, settings)
    }

    /// A new apply queue, delivery queue and campaign queue.
    pub async fn queues() -> crate::platform::Queues {
        crate::platform::Queues {
            apply: Arc::new(queue(crate::platform::APPLY_MAX_RECEIVES).await),
            delivery: Arc::new(queue(crate::platform::DELIVERY_MAX_RECEIVES).await),
            campaigns: Arc::new(queue(crate::platform::CAMPAIGN_MAX_RECEIVES).await),
        }
    }

    /// A table and the six queues of `template.yaml` on moto, and the
    /// environment a function's binary finds them by (as `template.yaml`
    /// sets it, with moto's endpoints and dummy credentials).
    pub async fn environment() -> Vec<(String, String)> {
        use crate::platform::{APPLY_MAX_RECEIVES, CAMPAIGN_MAX_RECEIVES, DELIVERY_MAX_RECEIVES};
        let (tables, queues) = (MotoServer::serialized(), MotoServer::shared());
        let dynamo = aws_sdk_dynamodb::Client::new(&config(tables).await);
        let table = unique("hookline");
        aws::create_table(&dynamo, &table)
            .await
            .expect("create table on moto");
        let sqs = aws_sdk_sqs::Client::new(&config(queues).await);
        let mut env = vec![
            ("HOOKLINE_TABLE".to_string(), table),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), tables.endpoint.clone()),
            ("AWS_ENDPOINT_URL_SQS".into(), queues.endpoint.clone()),
            (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER".into(),
                queues.endpoint.clone(),
            ),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        for (name, max) in [
            ("APPLY", APPLY_MAX_RECEIVES),
            ("DELIVERY", DELIVERY_MAX_RECEIVES),
            ("CAMPAIGN", CAMPAIGN_MAX_RECEIVES),
        ] {
            let (url, dead) = aws::create_queue(&sqs, &unique(&name.to_lowercase()), max)
                .await
                .expect("create queue on moto");
            env.push((format!("HOOKLINE_{name}_QUEUE_URL"), url));
            env.push((format!("HOOKLINE_{name}_DLQ_URL"), dead));
        }
        env
    }

    /// The platform a function's binary builds from `env` (made by
    /// `environment`; its settings too): for a test to put there what the binary will read,
    /// and to read what it wrote.
    pub async fn platform_of(env: &[(String, String)]) -> Arc<crate::Platform> {
        use crate::platform::{APPLY_MAX_RECEIVES, CAMPAIGN_MAX_RECEIVES, DELIVERY_MAX_RECEIVES};
        let var = |name: &str| env_var(env, name);
        let clock: Arc<dyn Clock> = Arc::new(crate::ports::SystemClock);
        let dynamo = aws_sdk_dynamodb::Client::new(&config(MotoServer::serialized()).await);
        let sqs = aws_sdk_sqs::Client::new(&config(MotoServer::shared()).await);
        let queue = |name: &str, max| {
            Arc::new(SqsQueue::new(
                sqs.clone(),
                var(&format!("HOOKLINE_{name}_QUEUE_URL")),
                var(&format!("HOOKLINE_{name}_DLQ_URL")),
                max,
            ))
        };
        let queues = crate::platform::Queues {
            apply: queue("APPLY", APPLY_MAX_RECEIVES),
            delivery: queue("DELIVERY", DELIVERY_MAX_RECEIVES),
            campaigns: queue("CAMPAIGN", CAMPAIGN_MAX_RECEIVES),
        };
        let store = DynamoStore::new(dynamo, &var("HOOKLINE_TABLE"), clock.clone());
        let settings = crate::config::Settings::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("the environment's settings");
        crate::Platform::new(Arc::new(store), queues, clock, settings)
    }

    /// The value of `name` in `env`.
    pub fn env_var(env: &[(String, String)], name: &str) -> String {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} is not in the environment"))
    }

    /// `body` sent on `queue` (the one `env` names by `url_var`) and
    /// received: the SQS event that hands it to a function, with its real
    /// id and receipt.
    pub async fn queued_event(
        env: &[(String, String)],
        url_var: &str,
        queue: &dyn crate::ports::Queue,
        body: String,
    ) -> String {
        queue
            .send_batch(vec![(body, std::time::Duration::ZERO)])
            .await
            .expect("sent to moto");
        let got = receive_exactly(queue, 1).await;
        sqs_event(&env_var(env, url_var), &got)
    }

    /// An SQS event of `messages` (bodies and receipts) from the queue at
    /// `queue_url`, as Lambda's event source hands them to a function.
    pub fn sqs_event(queue_url: &str, messages: &[crate::ports::QueueMessage]) -> String {
        let name = queue_url.rsplit('/').next().unwrap_or_default();
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.id,
                    "receiptHandle": m.receipt,
                    "body": m.body,
                    "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        serde_json::json!({ "Records": records }).to_string()
    }

    /// A secret on moto holding `value`; answers its ARN.
    pub async fn secret(value: &str) -> String {
        secret_named(&unique("hookline-key"), value).await
    }

    /// The secret `id` (its ARN or name) holds `value` from now on.
    pub async fn change_secret(id: &str, value: &str) {
        let client = aws_sdk_secretsmanager::Client::new(&config(MotoServer::shared()).await);
        client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value on moto");
    }

    /// A secret of that name holding `value`: its ARN.
    pub async fn secret_named(name: &str, value: &str) -> String {
        let client = aws_sdk_secretsmanager::Client::new(&config(MotoServer::shared()).await);
        client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret on moto")
            .arn
            .expect("its ARN")
    }

    /// The next `n` messages of `queue`, received with a visibility of 30 s.
    /// Fails the test when they have not all come within 30 s.
    pub async fn receive_exactly(
        queue: &dyn crate::ports::Queue,
        n: usize,
    ) -> Vec<crate::ports::QueueMessage> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} messages received within 30 s",
                got.len()
            );
            let wait = std::time::Duration::from_secs(1);
            got.extend(
                queue
                    .receive(10, std::time::Duration::from_secs(30), wait)
                    .await
                    .expect("receive from moto"),
            );
        }
        assert_eq!(got.len(), n, "more messages than the {n} expected");
        got
    }

    /// A new queue with a dead-letter queue after `max_receives`.
    pub async fn queue(max_receives: u32) -> SqsQueue {
        let config = config(MotoServer::shared()).await;
        let client = aws_sdk_sqs::Client::new(&config);
        let name = unique("hookline");
        let (url, dead_url) = aws::create_queue(&client, &name, max_receives)
            .await
            .expect("create queue on moto");
        SqsQueue::new(client, url, dead_url, max_receives)
    }
}

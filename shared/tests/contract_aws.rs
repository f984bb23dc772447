//! The contract suite against the AWS adapters, on a moto_server started by
//! the test (over HTTP, as the SDK talks to AWS).

use hookline::ports::{Queue, Store, TestClock};
use hookline::testkit::moto::aws;
use std::sync::Arc;

async fn store(clock: TestClock) -> (Arc<dyn Store>, ()) {
    let (store, _table) = aws::store(Arc::new(clock)).await;
    (Arc::new(store), ())
}

async fn queue(max_receives: u32) -> (Arc<dyn Queue>, ()) {
    (Arc::new(aws::queue(max_receives).await), ())
}

hookline::contract_tests!(store, queue);

/// Where processes share the store (Lambda), their requests of a second
/// count together: two platforms on one table, as two instances, take 10
/// requests of a second between them, not 10 each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_an_accounts_requests_a_second() {
    use hookline::accounts;
    let clock = TestClock::at("2026-11-25T12:00:00Z".parse().unwrap());
    let (table, _) = aws::store(Arc::new(clock.clone())).await;
    let table: Arc<dyn Store> = Arc::new(table);
    let settings = hookline::config::Settings {
        inbound_per_second: Some(10),
        ..Default::default()
    };
    let instance = || async {
        hookline::Platform::new(
            table.clone(),
            hookline::platform::Queues::single(Arc::new(aws::queue(8).await)),
            Arc::new(clock.clone()),
            settings.clone(),
        )
    };
    let (one, two) = (instance().await, instance().await);
    accounts::ensure_default(&one, None).await.unwrap();
    let account = accounts::DEFAULT_ACCOUNT;
    let mut taken = 0;
    for i in 0..30 {
        let p = if i % 2 == 0 { &one } else { &two };
        match accounts::usage::admit_inbound(p, account).await {
            Ok(()) => taken += 1,
            Err(e) => assert_eq!(e.code(), "rate_limited"),
        }
    }
    assert_eq!(taken, 10);
    clock.advance(std::time::Duration::from_secs(1));
    accounts::usage::admit_inbound(&two, account).await.unwrap();

    // Instances with a request or two each take about what they use (a
    // slice of 1, then 2...), so 12 of them asking 3 times each under a
    // limit of 30 are let in 30 times: none holds an allowance it leaves
    // unused while another is refused.
    let limit = hookline::config::Settings {
        inbound_per_second: Some(30),
        ..Default::default()
    };
    clock.advance(std::time::Duration::from_secs(1));
    let mut many = Vec::new();
    for _ in 0..12 {
        many.push(hookline::Platform::new(
            table.clone(),
            hookline::platform::Queues::single(Arc::new(aws::queue(8).await)),
            Arc::new(clock.clone()),
            limit.clone(),
        ));
    }
    let mut taken = 0;
    for _ in 0..3 {
        for p in &many {
            if accounts::usage::admit_inbound(p, account).await.is_ok() {
                taken += 1;
            }
        }
    }
    assert_eq!(taken, 30, "the whole second's allowance, to whoever asked");
}

/// Every admin operation with one account's key on another's objects
/// answers 404, on DynamoDB and SQS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_kept_apart() {
    hookline::testkit::isolation::check(aws::platform().await).await;
}

/// The stack's keys are read from Secrets Manager when a function starts
/// (their ARNs are in its environment, not the keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_read_from_secrets_manager() {
    use hookline::adapters::aws::secrets;
    let config = aws::config(hookline::testkit::moto::MotoServer::shared()).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let name = format!("hookline-admin-key-{}", std::process::id());
    let made = client
        .create_secret()
        .name(&name)
        .secret_string("  an admin key of sixteen chars  ")
        .send()
        .await
        .expect("create a secret on moto");
    let arn = made.arn().expect("an ARN").to_string();
    assert_eq!(
        secrets::read(&client, &arn).await.unwrap(),
        "an admin key of sixteen chars"
    );
    assert_eq!(
        secrets::read(&client, &name).await.unwrap(),
        "an admin key of sixteen chars"
    );
    let missing = secrets::read(&client, "no-such-secret").await.unwrap_err();
    assert!(missing.contains("no-such-secret"), "{missing}");
    let blank = format!("{name}-blank");
    client
        .create_secret()
        .name(&blank)
        .secret_string("   ")
        .send()
        .await
        .unwrap();
    let empty = secrets::read(&client, &blank).await.unwrap_err();
    assert!(empty.contains("holds no text"), "{empty}");
}

/// Every call has an answer or an error within its time: a service that
/// takes the connection and never answers fails the call after the SDK's
/// three attempts, instead of holding it for ever; and a long poll of SQS
/// gets its wait on top of that time (past the 5 s after which the SDK
/// fails an attempt whose request body it never saw read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_never_answered_is_an_error_and_long_polls_get_their_wait() {
    use hookline::adapters::aws::{DynamoStore, SqsQueue, timeouts};
    use hookline::testkit::moto::MotoServer;
    use std::time::{Duration, Instant};
    let on_moto = aws::config(MotoServer::shared()).await;
    // Connections to it are made (the kernel's backlog), never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = on_moto.to_builder();
    config.set_timeout_config(Some(timeouts(Duration::from_millis(300))));
    config.set_endpoint_url(Some(format!("http://{}", silent.local_addr().unwrap())));
    let config = config.build();
    let clock = Arc::new(TestClock::at("2026-11-25T12:00:00Z".parse().unwrap()));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "silent", clock);
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        store.get(&hookline::ports::Key::new("a", "b")),
    )
    .await
    .expect("no answer and no error within 20 s");
    let error = format!("{:?}", answer.expect_err("no answer came"));
    assert!(error.to_lowercase().contains("timeout"), "{error}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "three attempts: {took:?}"
    );
    // Each attempt was a connection of its own, left waiting to be accepted.
    silent.set_nonblocking(true).unwrap();
    let attempts = std::iter::from_fn(|| silent.accept().ok()).count();
    assert_eq!(attempts, 3, "the SDK's standard retries: three attempts");

    // On moto, an empty queue long-polled for 8 s, by a client whose
    // other calls are given 2 s an attempt: an empty answer, after 8 s.
    let (url, dead) = hookline::adapters::aws::create_queue(
        &aws_sdk_sqs::Client::new(&on_moto),
        &format!("hookline-poll-{}", std::process::id()),
        5,
    )
    .await
    .unwrap();
    let mut config = on_moto.to_builder();
    config.set_timeout_config(Some(timeouts(Duration::from_secs(2))));
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&config.build()), url, dead, 5);
    let started = Instant::now();
    let got = queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(8))
        .await
        .expect("a long poll outlasts the answer time of other calls");
    assert!(got.is_empty());
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(8), "{took:?}");
}

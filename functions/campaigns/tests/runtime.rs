//! The `campaigns` binary as Lambda runs it: started against a local
//! Runtime API (`testkit::runtime`), the table and queues on moto, given the
//! schedule's tick and the SQS event of `events/`. `HOOKLINE_LAMBDA_BIN_DIR`
//! runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_events_through_the_runtime_api() {
    let env = hookline::testkit::moto::aws::environment().await;
    let f = Running::start(&binary("campaigns", env!("CARGO_BIN_EXE_campaigns")), &env).await;
    // The tick reads the table's due campaigns: none.
    let tick = f
        .answer(include_str!("../../../events/campaigns-tick.json"))
        .await;
    assert_eq!(
        tick,
        serde_json::json!({"due": 0, "started": 0, "waiting": 0})
    );
    // Its messages are of a campaign that is not there: done with.
    let answer = f
        .answer(include_str!("../../../events/campaigns-sqs.json"))
        .await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
}

/// A due campaign: the tick starts its run, the run's messages go through
/// the binary, and its matched profiles are POSTed to its URL, form-encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_due_campaign_to_its_url() {
    use serde_json::json;
    let mut env = hookline::testkit::moto::aws::environment().await;
    env.push(("HOOKLINE_ALLOW_PRIVATE_TARGETS".into(), "1".into()));
    let (posted_tx, mut posted) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |body: String| {
        let posted_tx = posted_tx.clone();
        async move {
            let _ = posted_tx.send(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let p = hookline::testkit::moto::aws::platform_of(&env).await;
    hookline::accounts::ensure_default(&p, None).await.unwrap();
    let account = hookline::accounts::DEFAULT_ACCOUNT;
    let profiles = json!([{"$distinct_id": "ada", "$properties": {"plan": "pro"}},
        {"$distinct_id": "bob", "$properties": {"plan": "free"}}]);
    let updates = hookline::profiles::parse_profiles(&profiles).unwrap();
    hookline::profiles::upsert(&p, account, updates)
        .await
        .unwrap();
    let c = hookline::campaigns::create(
        &p,
        account,
        &json!({"name": "pro", "url": url, "where": "user.plan == 'pro'",
                "schedule": {"type": "asap"}}),
    )
    .await
    .unwrap();
    let f = Running::start(&binary("campaigns", env!("CARGO_BIN_EXE_campaigns")), &env).await;
    let tick = f
        .answer(include_str!("../../../events/campaigns-tick.json"))
        .await;
    assert_eq!(
        (&tick["due"], &tick["started"]),
        (&json!(1), &json!(1)),
        "{tick}"
    );
    let queue_url = hookline::testkit::moto::aws::env_var(&env, "HOOKLINE_CAMPAIGN_QUEUE_URL");
    // The run's messages, through the binary until the run is done (a
    // message reported failed, the final pass waiting for its segments,
    // comes back after its backoff).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (runs, _) = hookline::campaigns::run::runs(&p, account, &c.id, 10, None)
            .await
            .unwrap();
        if runs.first().is_some_and(|r| r.status == "done") {
            assert_eq!((runs[0].sent, runs[0].failed), (1, 0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run never ended");
        let got = p
            .campaign_queue
            .receive(
                10,
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs(1),
            )
            .await
            .unwrap();
        if got.is_empty() {
            continue;
        }
        let answer = f
            .answer(&hookline::testkit::moto::aws::sqs_event(&queue_url, &got))
            .await;
        assert!(answer["batchItemFailures"].is_array(), "{answer}");
    }
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), posted.recv())
        .await
        .expect("the campaign's URL was called")
        .unwrap();
    let form: Vec<(String, String)> = url_pairs(&body);
    assert_eq!(form[0].0, "users", "{body}");
    let users: serde_json::Value = serde_json::from_str(&form[0].1).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    assert_eq!(users[0]["$distinct_id"], "ada");
}

/// A form body as its pairs, decoded.
fn url_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

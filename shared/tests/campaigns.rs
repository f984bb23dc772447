//! Campaign runs when queue messages come twice (a worker that stopped
//! after doing its work, before settling it): every segment page and every
//! batch handled twice, on the embedded platform, posting to a local
//! receiver. No user is posted twice, and the run's counts end right.

use hookline::messages::CampaignMessage;
use hookline::ports::QueueMessage;
use hookline::scheduler::CampaignHandler;
use hookline::work::{Handler, Outcome};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT: &str = hookline::accounts::DEFAULT_ACCOUNT;

/// A receiver that answers 200 and keeps the users of each post.
async fn receiver() -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let users: Vec<Value> = serde_json::from_str(&form["users"]).unwrap();
            kept.lock().unwrap().push(
                users
                    .iter()
                    .map(|u| u["$distinct_id"].as_str().unwrap().to_string())
                    .collect(),
            );
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_handled_twice_posts_each_user_once() {
    let (p, _dir) = hookline::testkit::platform().await;
    hookline::accounts::ensure_default(&p, None).await.unwrap();
    let (base, seen) = receiver().await;
    let profiles: Vec<Value> = (0..1234)
        .map(|i| json!({"$distinct_id": format!("u{i}"), "$properties": {"n": i}}))
        .collect();
    for chunk in profiles.chunks(1000) {
        let updates = hookline::profiles::parse_profiles(&json!(chunk)).unwrap();
        hookline::profiles::upsert(&p, ACCOUNT, updates)
            .await
            .unwrap();
    }
    let c = hookline::campaigns::create(
        &p,
        ACCOUNT,
        &json!({"name": "all", "url": format!("{base}/mp"), "where": "user.n >= 0",
                "active": false, "schedule": {"type": "scheduled", "at": "09:00"}}),
    )
    .await
    .unwrap();
    let run = hookline::campaigns::run::run_now(&p, ACCOUNT, &c.id)
        .await
        .unwrap();
    let handler = CampaignHandler::new(p.clone());
    let (mut segments, mut batches) = (0, 0);
    loop {
        let got = p
            .campaign_queue
            .receive(10, Duration::from_secs(60), Duration::from_millis(300))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in &got {
            match serde_json::from_str::<CampaignMessage>(&m.body).unwrap() {
                CampaignMessage::Segment { .. } => segments += 1,
                CampaignMessage::Batch { .. } => batches += 1,
            }
            // Handled, then received again and handled again.
            for _ in 0..2 {
                let outcome = handler
                    .handle(std::slice::from_ref::<QueueMessage>(m))
                    .await;
                assert!(matches!(outcome[0], Outcome::Done), "{outcome:?}");
            }
            p.campaign_queue.delete(&m.receipt).await.unwrap();
        }
    }
    assert!(segments >= 16, "a message per segment at least: {segments}");
    let posts = seen.lock().unwrap().clone();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for post in &posts {
        assert!(post.len() <= 50);
        for u in post {
            *times.entry(u.as_str()).or_default() += 1;
        }
    }
    assert_eq!(times.len(), 1234, "every user");
    assert!(times.values().all(|n| *n == 1), "each once");
    assert_eq!(
        posts.len(),
        1234usize.div_ceil(50),
        "{batches} batch messages"
    );
    let (runs, _) = hookline::campaigns::run::runs(&p, ACCOUNT, &c.id, 10, None)
        .await
        .unwrap();
    let r = &runs[0];
    assert_eq!(r.id, run.id);
    assert_eq!(
        (r.status, r.matched, r.queued, r.sent, r.failed, r.pending),
        ("done", 1234, 1234, 1234, 0, 0),
        "{r:?}"
    );
}

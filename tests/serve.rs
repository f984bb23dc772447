//! `hookline serve` end to end: the binary, over sockets.

mod support;

use serde_json::{Value, json};
use support::{Server, client};

async fn create_list(server: &Server, key: &str, name: &str) -> Value {
    let resp = client()
        .post(server.url("/v1/lists"))
        .bearer_auth(key)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn list_names(server: &Server, key: &str) -> Vec<String> {
    let resp = client()
        .get(server.url("/v1/lists"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn first_start_prints_a_key_once_and_data_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let key = server
        .printed_key
        .clone()
        .expect("the first start prints the admin key");
    let operator = server
        .printed_operator_key
        .clone()
        .expect("and the operator key");
    create_list(&server, &key, "Greenhouse candidates").await;
    let (status, out) = server.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status} {out:?}");
    assert!(out.iter().any(|l| l == "hookline stopped"), "{out:?}");

    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.printed_key, None, "the key is printed once only");
    assert_eq!(server.printed_operator_key, None, "the operator key too");
    let accounts = client()
        .get(server.url("/v1/operator/accounts"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(
        accounts.status(),
        200,
        "the operator key, kept across restarts"
    );
    assert_eq!(
        list_names(&server, &key).await,
        vec!["Greenhouse candidates"]
    );
    let resp = client()
        .get(server.url("/v1/lists"))
        .bearer_auth("hl_admin_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn accepted_writes_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("HOOKLINE_ADMIN_KEY", "e2e-admin-key-0123")]);
    assert_eq!(server.printed_key, None, "a configured key is not printed");
    // Concurrent creates, each answered 201 only once durable.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let url = server.url("/v1/lists");
            tokio::spawn(async move {
                let resp = client()
                    .post(url)
                    .bearer_auth("e2e-admin-key-0123")
                    .json(&json!({"name": format!("L{i:02}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    server.crash();
    let server = Server::start(dir.path(), &[("HOOKLINE_ADMIN_KEY", "e2e-admin-key-0123")]);
    let mut names = list_names(&server, "e2e-admin-key-0123").await;
    names.sort();
    assert_eq!(
        names,
        (0..20).map(|i| format!("L{i:02}")).collect::<Vec<_>>()
    );
}

/// GET with the admin key: status and JSON.
async fn admin_get(server: &Server, key: &str, path: &str) -> (u16, Value) {
    let resp = client()
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The apply worker's store writes answer before they are on disk; the batch
/// is synced once before its messages leave the queue. Killed after that,
/// nothing applied may be missing: restarted without workers (so nothing is
/// applied again), every request's outcome, contact and list entry is there.
#[tokio::test]
async fn applied_work_survives_a_crash() {
    let key = "e2e-admin-key-0123";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("HOOKLINE_ADMIN_KEY", key)]);
    let list = create_list(&server, key, "Applied").await;
    let resp = client()
        .post(server.url("/v1/triggers"))
        .bearer_auth(key)
        .json(
            &json!({"name": "Crash", "actions": [{"type": "add_to_list", "list_id": list["id"]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let trigger: Value = resp.json().await.unwrap();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let url = trigger["url"].as_str().unwrap().to_string();
            tokio::spawn(async move {
                let resp = client()
                    .post(url)
                    .json(&json!({"email": format!("p{i}@example.com"), "name": format!("P {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let body: Value = resp.json().await.unwrap();
                body["request_id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut requests = Vec::new();
    for t in tasks {
        requests.push(t.await.unwrap());
    }
    let tid = trigger["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for r in &requests {
        while admin_get(&server, key, &format!("/v1/triggers/{tid}/requests/{r}"))
            .await
            .0
            != 200
        {
            assert!(std::time::Instant::now() < deadline, "{r} not applied");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // Visible now; the sync and the deletes follow within milliseconds (an
    // idle server makes no other durable commit that could hide a missing
    // sync, however long this waits).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    server.crash();

    let server = Server::start(
        dir.path(),
        &[("HOOKLINE_ADMIN_KEY", key), ("HOOKLINE_APPLY_WORKERS", "0")],
    );
    for r in &requests {
        let (status, record) =
            admin_get(&server, key, &format!("/v1/triggers/{tid}/requests/{r}")).await;
        assert_eq!(status, 200, "{r} was applied before the crash: {record}");
        assert_eq!(record["status"], "applied", "{record}");
    }
    for i in 0..30 {
        let (status, contact) = admin_get(
            &server,
            key,
            &format!("/v1/contacts?email=p{i}@example.com"),
        )
        .await;
        assert_eq!(status, 200, "p{i}: {contact}");
        assert_eq!(contact["name"], format!("P {i}"));
    }
    let (_, members) = admin_get(
        &server,
        key,
        &format!(
            "/v1/lists/{}/contacts?limit=100",
            list["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(members["data"].as_array().unwrap().len(), 30, "{members}");
}

#[tokio::test]
async fn errors_are_json_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("HOOKLINE_ADMIN_KEY", "errors-admin-key-0123")],
    );
    let c = client();
    let bad = c
        .post(server.url("/v1/lists"))
        .bearer_auth("errors-admin-key-0123")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let hook = c
        .post(server.url("/hooks/trg_unknown"))
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 404);
    let doc: Value = c
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/lists"]["post"].is_object());
    let health = c.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn bad_settings_stop_the_start_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let err = Server::try_start(dir.path(), &[("HOOKLINE_RETRY_SCHEDULE", "5s,soon")])
        .err()
        .expect("refused");
    assert!(err.contains("HOOKLINE_RETRY_SCHEDULE"), "{err}");
    let err = Server::try_start(dir.path(), &[("HOOKLINE_MAX_CONNECTIONS", "lots")])
        .err()
        .expect("refused");
    assert!(err.contains("HOOKLINE_MAX_CONNECTIONS"), "{err}");
    let err = Server::try_start(dir.path(), &[("HOOKLINE_ADMIN_KEY", "letmein")])
        .err()
        .expect("a short admin key refused");
    assert!(
        err.contains("HOOKLINE_ADMIN_KEY is 7 characters; use at least 16"),
        "{err}"
    );
    let out = std::process::Command::new(support::binary())
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let err = Server::try_start(dir.path(), &[])
        .err()
        .expect("the data directory is in use");
    assert!(err.contains("data directory"), "{err}");
}

/// A raw connection to the server, for what an HTTP client library will not
/// send: stalled headers and bodies, lying lengths, idle connections.
fn raw(server: &Server) -> std::net::TcpStream {
    let addr = server.url("").trim_start_matches("http://").to_string();
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    s
}

/// Everything the server sends until it closes the connection (or 15 s).
fn read_to_close(mut s: std::net::TcpStream) -> (String, std::time::Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_idle_and_oversized_clients_are_cut_off_and_health_answers() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("HOOKLINE_HEADER_TIMEOUT", "1s"),
            ("HOOKLINE_REQUEST_TIMEOUT", "2s"),
            ("HOOKLINE_MAX_CONNECTIONS", "8"),
        ],
    );
    let secs = std::time::Duration::from_secs;

    // A length far past the limit, with a short body: 413 at once.
    let mut s = raw(&server);
    s.write_all(b"POST /hooks/trg_x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\nContent-Type: application/json\r\n\r\n{}")
        .unwrap();
    let (answer, took) = read_to_close(s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"too_large\""), "{answer}");
    assert!(took < secs(10), "{took:?}");

    // A chunked body past the limit, with no length announced, to a real
    // trigger URL: 413 too, once it has been sent (so that the client reads it).
    let key = server.printed_key.clone().unwrap();
    let trigger: Value = client()
        .post(server.url("/v1/triggers"))
        .bearer_auth(&key)
        .json(&json!({"name": "T"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook = format!("/hooks/{}", trigger["id"].as_str().unwrap());
    let mut s = raw(&server);
    s.write_all(format!("POST {hook} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n").as_bytes())
        .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..5 {
        let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = s.write_all(&chunk);
        let _ = s.write_all(b"\r\n");
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let (answer, _) = read_to_close(s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Headers that never end: the connection is closed after the header timeout.
    let mut s = raw(&server);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (_, took) = read_to_close(s);
    assert!(took < secs(5), "{took:?}");

    // A trigger URL that lets no request in answers at once, without
    // waiting for a body that may never come.
    let mut s = raw(&server);
    s.write_all(b"POST /hooks/trg_01jf6z0c1qz8m3v2w4x5y6z7a8 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{\"na")
        .unwrap();
    let (answer, took) = read_to_close(s);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(
        took < secs(1),
        "answered before the 2 s a body may take: {took:?}"
    );

    // A body that stalls: 408 in the contract's shape after the request timeout.
    let mut s = raw(&server);
    s.write_all(format!("POST /v1/lists HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{{\"na").as_bytes())
        .unwrap();
    let (answer, took) = read_to_close(s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(took < secs(10), "{took:?}");

    // Twice the connection limit, idle: /health still answers once the idle
    // ones are closed by the header timeout.
    let idle: Vec<_> = (0..16).map(|_| raw(&server)).collect();
    let started = std::time::Instant::now();
    let resp = client()
        .get(server.url("/health"))
        .timeout(secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < secs(15));
    drop(idle);
    // A kept-alive connection left idle is closed too.
    let mut s = raw(&server);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, took) = read_to_close(s);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < secs(5), "{took:?}");
}

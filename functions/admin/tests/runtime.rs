//! The `admin` binary as Lambda runs it: started against a local Runtime
//! API (`testkit::runtime`), its key in Secrets Manager and the table and
//! queues on moto, given the API Gateway events of `events/`.
//! `HOOKLINE_LAMBDA_BIN_DIR` runs a release build instead.

use hookline::testkit::runtime::{Running, binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_its_events_through_the_runtime_api() {
    let mut env = hookline::testkit::moto::aws::environment().await;
    // The key the fixtures send.
    let secret = hookline::testkit::moto::aws::secret("test-admin-key-0123456789").await;
    env.push(("HOOKLINE_ADMIN_KEY_SECRET".into(), secret));
    let operator = hookline::testkit::moto::aws::secret("test-operator-key-0123456789").await;
    env.push(("HOOKLINE_OPERATOR_KEY_SECRET".into(), operator));
    let f = Running::start(&binary("admin", env!("CARGO_BIN_EXE_admin")), &env).await;
    let body = |answer: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
    };
    let made = f
        .answer(include_str!("../../../events/admin-create-list.json"))
        .await;
    assert_eq!(made["statusCode"], 201, "{made}");
    let listed = f
        .answer(include_str!("../../../events/admin-list-lists.json"))
        .await;
    assert_eq!(listed["statusCode"], 200, "{listed}");
    let lists = body(&listed);
    assert_eq!(lists["data"].as_array().unwrap().len(), 1, "{lists}");
    assert_eq!(lists["data"][0]["id"], body(&made)["id"]);
    // The operator key, read from its own secret, opens the operator routes
    // (the default account among the accounts), and the admin key does not.
    let as_operator = |key: &str| {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/admin-list-lists.json")).unwrap();
        event["rawPath"] = "/v1/operator/accounts".into();
        event["rawQueryString"] = "".into();
        event["requestContext"]["http"]["path"] = "/v1/operator/accounts".into();
        event["headers"]["authorization"] = format!("Bearer {key}").into();
        event.to_string()
    };
    let accounts = f.answer(&as_operator("test-operator-key-0123456789")).await;
    assert_eq!(accounts["statusCode"], 200, "{accounts}");
    let ids: Vec<_> = body(&accounts)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert!(ids.contains(&"acct_default".into()), "{ids:?}");
    let refused = f.answer(&as_operator("test-admin-key-0123456789")).await;
    assert_eq!(refused["statusCode"], 401, "{refused}");
    // The console's page, as text (not base64) with its headers.
    let mut page: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/admin-list-lists.json")).unwrap();
    page["rawPath"] = "/".into();
    page["rawQueryString"] = "".into();
    page["requestContext"]["http"]["method"] = "GET".into();
    page["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let console = f.answer(&page.to_string()).await;
    assert_eq!(console["statusCode"], 200, "{console}");
    assert_eq!(console["isBase64Encoded"], false);
    assert!(
        console["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/html"),
        "{console}"
    );
    assert!(
        console["headers"]["content-security-policy"]
            .as_str()
            .unwrap()
            .contains("script-src"),
        "{console}"
    );
    assert!(
        console["body"].as_str().unwrap().contains("<html"),
        "{console}"
    );
}

/// A key that cannot be read is no answer but 503 `not_ready` (the log says
/// why), request after request; each tries again, and once the key can be
/// read, the function answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_key_it_answers_503_until_it_can_read_it() {
    let mut env = hookline::testkit::moto::aws::environment().await;
    let name = format!("hookline-later-{}", hookline::ids::KeyId::new());
    env.push(("HOOKLINE_ADMIN_KEY_SECRET".into(), name.clone()));
    let f = Running::start(&binary("admin", env!("CARGO_BIN_EXE_admin")), &env).await;
    let list = include_str!("../../../events/admin-list-lists.json");
    for _ in 0..2 {
        let answer = f.answer(list).await;
        assert_eq!(answer["statusCode"], 503, "{answer}");
        let body: serde_json::Value =
            serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "not_ready", "{body}");
    }
    hookline::testkit::moto::aws::secret_named(&name, "test-admin-key-0123456789").await;
    let answer = f.answer(list).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
}

/// A new key in the secret (a deploy with a new `AdminKey`) takes effect in
/// a running instance once it reads its keys again, and the old one stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_in_the_secret_replaces_the_old_one() {
    let mut env = hookline::testkit::moto::aws::environment().await;
    let secret = hookline::testkit::moto::aws::secret("test-admin-key-0123456789").await;
    env.push(("HOOKLINE_ADMIN_KEY_SECRET".into(), secret.clone()));
    env.push(("HOOKLINE_KEYS_READ_EVERY".into(), "1".into()));
    let f = Running::start(&binary("admin", env!("CARGO_BIN_EXE_admin")), &env).await;
    let list = include_str!("../../../events/admin-list-lists.json");
    let with_key = |key: &str| {
        let mut event: serde_json::Value = serde_json::from_str(list).unwrap();
        event["headers"]["authorization"] = format!("Bearer {key}").into();
        event.to_string()
    };
    let (old, new) = (
        with_key("test-admin-key-0123456789"),
        with_key("the-next-admin-key-0123456789"),
    );
    assert_eq!(f.answer(&old).await["statusCode"], 200);
    assert_eq!(f.answer(&new).await["statusCode"], 401);
    hookline::testkit::moto::aws::change_secret(&secret, "the-next-admin-key-0123456789").await;
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if f.answer(&new).await["statusCode"] == 200 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the new key still refused after 10 s"
        );
    }
    assert_eq!(f.answer(&old).await["statusCode"], 401);
}

//! The ingest function's router, invoked with the API Gateway event in
//! `events/`, decoded by lambda_http as on AWS, against moto.

use hookline::testkit::call;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_event_for_an_unknown_trigger_is_not_found() {
    let platform = hookline::testkit::moto::aws::platform().await;
    let router = hookline::http::ingest_router(platform);
    let request =
        lambda_http::request::from_str(include_str!("../../../events/ingest-hook.json")).unwrap();
    let (status, body) = call(&router, request).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // The ingest face does not serve the admin API.
    let admin = include_str!("../../../events/admin-list-lists.json");
    let (status, body) = call(&router, lambda_http::request::from_str(admin).unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("route_not_found"))
    );
}

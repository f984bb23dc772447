//! The console as the real binary serves it: the page and its files, with
//! a Content-Security-Policy that runs no inline script and talks to no
//! other origin, and a first view under 100 KB. (Driving it in a browser
//! is for the browser tests.)

mod support;

use support::Admin;

#[tokio::test]
async fn the_console_is_served_with_its_policy() {
    let admin = Admin::start();
    let client = support::client();
    let mut total = 0;
    // The page, then every file it names (its script modules, preloaded).
    let html = client
        .get(admin.server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut files = vec![("/".to_string(), "text/html")];
    for part in html.split("\"/console/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        let kind = if name.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        files.push((format!("/console/{name}"), kind));
    }
    assert!(files.len() >= 6, "the page names its files: {files:?}");
    for (path, kind) in files {
        let path = path.as_str();
        let answer = client.get(admin.server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            header("content-type").starts_with(kind),
            "{path}: {}",
            header("content-type")
        );
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(answer.headers().get("set-cookie").is_none());
        let body = answer.bytes().await.unwrap();
        total += body.len();
        if path == "/" {
            let html = String::from_utf8_lossy(&body);
            assert!(html.contains("src=\"/console/app.js\""), "{html}");
            assert!(
                html.contains("type=\"password\""),
                "the key is typed, not shown"
            );
        }
    }
    assert!(total < 100 * 1024, "first view: {total} bytes");
    // Anything else under /console is the API's 404, in its shape.
    let (status, body) = support::answer(
        client
            .get(admin.server.url("/console/nothing.js"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    // The API's answers may do nothing in a browser.
    let answer = client
        .get(admin.server.url("/v1/usage"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert_eq!(csp, "default-src 'none'; frame-ancestors 'none'");
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
}

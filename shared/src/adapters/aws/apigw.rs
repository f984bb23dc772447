//! API Gateway HTTP API events (payload format 2.0) through an axum router:
//! the `ingest` and `admin` functions' HTTP faces.
//!
//! The event becomes the request `hookline serve` would have read off a
//! socket: its method, its path and raw query (origin form), its headers
//! (cookies folded back into `cookie`), its body decoded from base64 when
//! API Gateway encoded it. An HTTP API hands the path over percent-decoded
//! (`/v1/profiles/ada smith` for `ada%20smith`): what cannot stand in a
//! path as it is (a space, `%`, `#`, `?`, non-ASCII...) is encoded again,
//! so the router decodes what the client sent, once. The router's answer becomes the event answer:
//! `set-cookie` moved to `cookies`, repeated headers joined with commas (the
//! only way payload 2.0 carries them), a body sent as text when it is UTF-8
//! and not content-encoded, else in base64.
//!
//! A request API Gateway could not have sent (a method, header or base64
//! body that does not parse) answers 400 naming what is wrong, as a socket
//! would; the function goes on. A cookie that is no header value is left
//! out (Hookline reads none).

use std::collections::BTreeMap;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// What a decoded path holds that an encoded one cannot hold as it is.
/// `/` stays (API Gateway refuses `%2F`).
const NOT_IN_A_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

use crate::http::ApiError;

/// The parts of an HTTP API event that make the request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpEvent {
    #[serde(default)]
    raw_path: String,
    #[serde(default)]
    raw_query_string: String,
    #[serde(default)]
    cookies: Vec<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    request_context: RequestContext,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    http: HttpContext,
    #[serde(default)]
    stage: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HttpContext {
    method: String,
}

/// The answer API Gateway turns into the HTTP response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpAnswer {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

/// Serves `router` to the Lambda Runtime API until the function ends.
pub async fn run(router: axum::Router) -> Result<(), lambda_runtime::Error> {
    let router = &router;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<HttpEvent>| async move {
            Ok::<_, lambda_runtime::Error>(handle(router, event.payload).await)
        },
    ))
    .await
}

/// The router's answer to one event.
pub async fn handle(router: &axum::Router, event: HttpEvent) -> HttpAnswer {
    use tower::ServiceExt;
    let response = match request(event) {
        Ok(request) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(error) => {
            let mut refused = axum::response::IntoResponse::into_response(error);
            refused.headers_mut().insert(
                http::header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            refused
        }
    };
    answer(response).await
}

/// The request an event stands for.
pub fn request(event: HttpEvent) -> Result<Request<Body>, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let method =
        Method::from_bytes(event.request_context.http.method.as_bytes()).map_err(|_| {
            bad(format!(
                "{:?} is not an HTTP method",
                event.request_context.http.method
            ))
        })?;
    // A named stage prefixes the path it is called by: the router's routes
    // start after it (the `$default` stage adds nothing).
    let mut path = event.raw_path.as_str();
    if let Some(stage) = event
        .request_context
        .stage
        .as_deref()
        .filter(|s| *s != "$default")
        && let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage))
        && (rest.is_empty() || rest.starts_with('/'))
    {
        path = if rest.is_empty() { "/" } else { rest };
    }
    if path.is_empty() {
        path = "/";
    }
    let path = utf8_percent_encode(path, NOT_IN_A_PATH);
    let uri = if event.raw_query_string.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", event.raw_query_string)
    };
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .body(Body::empty())
        .map_err(|_| bad(format!("{uri:?} is not a request path")))?;
    let headers = request.headers_mut();
    for (name, value) in &event.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("{name:?} is not a header name")))?;
        // Bytes past ASCII are taken as they came (`Zoë`); control
        // characters are not.
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| bad(format!("the {name} header's value is not valid")))?;
        headers.append(name, value);
    }
    let cookies: Vec<&str> = event
        .cookies
        .iter()
        .map(String::as_str)
        .filter(|c| HeaderValue::from_str(c).is_ok())
        .collect();
    if !cookies.is_empty() {
        let joined = HeaderValue::from_str(&cookies.join("; ")).expect("each cookie checked");
        headers.insert(http::header::COOKIE, joined);
    }
    let body = match event.body {
        None => Vec::new(),
        Some(body) if event.is_base64_encoded => STANDARD
            .decode(body)
            .map_err(|_| bad("the body is marked base64 and is not".into()))?,
        Some(body) => body.into_bytes(),
    };
    *request.body_mut() = Body::from(body);
    Ok(request)
}

/// The event answer a response stands for.
pub async fn answer(response: Response<Body>) -> HttpAnswer {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::error!(%error, "a response body could not be read");
            return HttpAnswer {
                status_code: 500,
                headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
                cookies: Vec::new(),
                body: r#"{"error":{"code":"internal","message":"the answer could not be read"}}"#
                    .into(),
                is_base64_encoded: false,
            };
        }
    };
    let mut headers = BTreeMap::<String, String>::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::SET_COOKIE {
            cookies.push(value);
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let encoded = parts.headers.contains_key(http::header::CONTENT_ENCODING);
    let (body, is_base64_encoded) = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if !encoded => (text, false),
        _ => (STANDARD.encode(&bytes), true),
    };
    HttpAnswer {
        status_code: parts.status.as_u16(),
        headers,
        cookies,
        body,
        is_base64_encoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::any;
    use serde_json::json;

    fn event(value: serde_json::Value) -> HttpEvent {
        serde_json::from_value(value).expect("an event")
    }

    fn base() -> serde_json::Value {
        json!({
            "version": "2.0",
            "rawPath": "/echo/x",
            "rawQueryString": "a=1&b=%20",
            "headers": {"host": "api.example.com", "content-type": "application/json"},
            "requestContext": {"http": {"method": "POST"}, "stage": "$default"},
            "body": "{\"n\":1}",
            "isBase64Encoded": false
        })
    }

    /// Echoes what the router saw, as JSON.
    fn echo() -> axum::Router {
        axum::Router::new().route(
            "/echo/{x}",
            any(|request: Request<Body>| async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let headers: BTreeMap<_, _> = parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                axum::Json(json!({
                    "method": parts.method.as_str(),
                    "uri": parts.uri.to_string(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                }))
            }),
        )
    }

    async fn seen(value: serde_json::Value) -> (u16, serde_json::Value) {
        let answer = handle(&echo(), event(value)).await;
        assert!(!answer.is_base64_encoded);
        (
            answer.status_code,
            serde_json::from_str(&answer.body).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_router_sees_the_request_a_socket_would_give() {
        let mut e = base();
        e["cookies"] = json!(["a=1", "b=2"]);
        let (status, seen) = seen(e).await;
        assert_eq!(status, 200);
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["uri"], "/echo/x?a=1&b=%20");
        assert_eq!(seen["headers"]["host"], "api.example.com");
        assert_eq!(seen["headers"]["cookie"], "a=1; b=2");
        assert_eq!(seen["body"], "{\"n\":1}");
    }

    #[tokio::test]
    async fn a_base64_body_is_decoded_and_a_named_stage_left_out_of_the_path() {
        let mut e = base();
        e["body"] = STANDARD.encode("é\u{0}").into();
        e["isBase64Encoded"] = true.into();
        e["rawPath"] = "/prod/echo/x".into();
        e["rawQueryString"] = "".into();
        e["requestContext"]["stage"] = "prod".into();
        let (status, seen) = seen(e).await;
        assert_eq!(status, 200);
        assert_eq!(seen["uri"], "/echo/x");
        assert_eq!(seen["body"], "é\u{0}");
        // A path that only begins with the stage's letters keeps them.
        let mut e = base();
        e["rawPath"] = "/echo/x".into();
        e["requestContext"]["stage"] = "ech".into();
        assert_eq!(seen_status(e).await, 200);
    }

    async fn seen_status(value: serde_json::Value) -> u16 {
        handle(&echo(), event(value)).await.status_code
    }

    #[tokio::test]
    async fn what_api_gateway_could_not_send_answers_400_naming_it() {
        for (field, value, named) in [
            ("method", json!("GE T"), "HTTP method"),
            ("body", json!("not base64!"), "base64"),
            ("header", json!("a\u{1}b"), "content-type header"),
        ] {
            let mut e = base();
            match field {
                "method" => e["requestContext"]["http"]["method"] = value,
                "body" => {
                    e["body"] = value;
                    e["isBase64Encoded"] = true.into();
                }
                _ => e["headers"]["content-type"] = value,
            }
            let answer = handle(&echo(), event(e)).await;
            assert_eq!(answer.status_code, 400, "{field}: {}", answer.body);
            let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(body["error"]["code"], "bad_request");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(named), "{field}: {message}");
            assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        }
    }

    /// API Gateway decodes the path: what the client encoded reaches the
    /// route decoded once, and nothing in it is taken for a query or a
    /// fragment.
    #[tokio::test]
    async fn a_decoded_path_is_encoded_again() {
        let router = axum::Router::new().route(
            "/p/{id}",
            any(
                |axum::extract::Path(id): axum::extract::Path<String>, uri: http::Uri| async move {
                    axum::Json(json!({"id": id, "uri": uri.to_string()}))
                },
            ),
        );
        for (raw, id, uri) in [
            ("/p/ada smith", "ada smith", "/p/ada%20smith?a=1"),
            ("/p/a#b", "a#b", "/p/a%23b?a=1"),
            ("/p/a?b", "a?b", "/p/a%3Fb?a=1"),
            ("/p/100%25", "100%25", "/p/100%2525?a=1"),
            ("/p/zoë", "zoë", "/p/zo%C3%AB?a=1"),
        ] {
            let mut e = base();
            e["rawPath"] = raw.into();
            e["rawQueryString"] = "a=1".into();
            let answer = handle(&router, event(e)).await;
            assert_eq!(answer.status_code, 200, "{raw}: {}", answer.body);
            let seen: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(
                (seen["id"].as_str(), seen["uri"].as_str()),
                (Some(id), Some(uri)),
                "{raw}"
            );
        }
    }

    #[tokio::test]
    async fn header_values_past_ascii_are_taken_and_a_bad_cookie_left_out() {
        let router = axum::Router::new().route(
            "/echo/{x}",
            any(|request: Request<Body>| async move {
                let h = request.headers();
                axum::Json(json!({
                    "sender": h["x-sender"].as_bytes(),
                    "cookie": h["cookie"].to_str().unwrap(),
                }))
            }),
        );
        let mut e = base();
        e["headers"]["x-sender"] = "Zoë".into();
        e["cookies"] = json!(["a=1", "b=\u{1}", "c=3"]);
        let answer = handle(&router, event(e)).await;
        assert_eq!(answer.status_code, 200, "{}", answer.body);
        let seen: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(seen["sender"], json!("Zoë".as_bytes()));
        assert_eq!(seen["cookie"], "a=1; c=3");
    }

    #[tokio::test]
    async fn the_answer_carries_cookies_apart_joined_headers_and_binary_in_base64() {
        let router = axum::Router::new()
            .route(
                "/text",
                any(|| async {
                    Response::builder()
                        .header("set-cookie", "a=1")
                        .header("set-cookie", "b=2")
                        .header("vary", "origin")
                        .header("vary", "accept")
                        .header("content-type", "text/html; charset=utf-8")
                        .body(Body::from("<p>é</p>"))
                        .unwrap()
                }),
            )
            .route(
                "/binary",
                any(|| async { Response::new(Body::from(vec![0xff, 0x00, 0xfe])) }),
            )
            .route(
                "/gzip",
                any(|| async {
                    Response::builder()
                        .header("content-encoding", "gzip")
                        .body(Body::from("abc"))
                        .unwrap()
                }),
            );
        let call = |path: &str| {
            let mut e = base();
            e["rawPath"] = path.into();
            handle(&router, event(e))
        };
        let text = call("/text").await;
        assert_eq!(text.status_code, 200);
        assert_eq!(text.cookies, ["a=1", "b=2"]);
        assert_eq!(text.headers["vary"], "origin, accept");
        assert!(!text.headers.contains_key("set-cookie"));
        assert_eq!(
            (text.body.as_str(), text.is_base64_encoded),
            ("<p>é</p>", false)
        );
        let binary = call("/binary").await;
        assert!(binary.is_base64_encoded);
        assert_eq!(STANDARD.decode(&binary.body).unwrap(), [0xff, 0x00, 0xfe]);
        let gzip = call("/gzip").await;
        assert_eq!((gzip.body.as_str(), gzip.is_base64_encoded), ("YWJj", true));
        // Serialised as API Gateway reads it; no cookies, no field.
        let json = serde_json::to_value(&binary).unwrap();
        assert_eq!(json["statusCode"], 200);
        assert_eq!(json["isBase64Encoded"], true);
        assert!(json.get("cookies").is_none(), "{json}");
        assert_eq!(
            serde_json::to_value(&text).unwrap()["cookies"],
            json!(["a=1", "b=2"])
        );
    }

    #[test]
    fn an_event_without_its_request_context_is_not_an_http_event() {
        let mut e = base();
        e.as_object_mut().unwrap().remove("requestContext");
        assert!(serde_json::from_value::<HttpEvent>(e).is_err());
    }
}

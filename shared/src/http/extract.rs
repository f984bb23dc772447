//! Extractors that answer bad input in the contract's error shape.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use super::ApiError;
use crate::Platform;
use crate::accounts;

/// A JSON body; an unparseable one is a 400, a mistyped one a 422, both
/// naming what is wrong.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_json(req, state, false).await.map(Json)
    }
}

/// A JSON body that may be a list as well as an object (routes that take
/// one item or many: profiles, tracked events).
pub struct JsonOrList<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrList<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_json(req, state, true).await.map(JsonOrList)
    }
}

async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
    lists: bool,
) -> Result<T, ApiError> {
    {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|r| json_rejection(JsonRejection::BytesRejection(r)))?;
        // Every body of the API is an object: serde would also read a
        // struct from a list (`["name"]`), which no one means.
        let json = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        if !lists && json && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::invalid(
                "invalid_body",
                "the body must be a JSON object, not a list",
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(v),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {}", source_text(&e)),
        ),
        JsonRejection::JsonDataError(e) => ApiError::invalid("invalid_body", source_text(&e)),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is larger than this route accepts",
            )
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// serde's own sentence ("missing field `name` at line 1 column 2"), without
/// axum's prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    last
}

/// A body that may be left out: nothing (or blanks) is `None`; otherwise a
/// JSON object read as `T` (not `null`, nor a list, from which serde would
/// read a struct).
pub fn optional_json<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            "invalid_body",
            "the body must be a JSON object, or nothing",
        ));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| ApiError::invalid("invalid_body", format!("invalid body: {e}")))
}

/// Query parameters, answered like bodies when malformed.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::bad_request("invalid_query", source_text(&e)))
            }
            Err(other) => Err(ApiError::bad_request("invalid_query", other.body_text())),
        }
    }
}

/// Path parameters; one that cannot be read (not UTF-8 once %-decoded) is a
/// 400 in the contract's shape, not axum's plain text.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::bad_request("invalid_path", e.body_text()))
            }
            Err(other) => Err(ApiError::internal("path", other.body_text())),
        }
    }
}

/// `?limit=&cursor=` of list routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many a page holds: 1 to 200, 50 when absent.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<usize>,
    /// `next_cursor` of the page before; without, the first page.
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;

impl PageParams {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            // Parsed, but out of range: 422, as the contract has it.
            Some(n) => Err(ApiError::invalid(
                "invalid_limit",
                format!("limit {n} is out of range: use 1 to {MAX_PAGE}"),
            )),
        }
    }
}

/// The account an admin request acts for, from `Authorization: Bearer <admin key>`.
pub struct Account(pub String);

impl FromRequestParts<Arc<Platform>> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers)?;
        let (account, due) = accounts::identify(platform, key).await?;
        // Its last use, when due (once a minute): a write beside the handler.
        if let Some(id) = due {
            let (p, acct) = (platform.clone(), account.clone());
            let note = async move { accounts::note_use(&p, &acct, &id).await };
            match parts.extensions.get::<Pending>() {
                Some(pending) => pending.push(tokio::spawn(note)),
                None => note.await,
            }
        }
        tracing::Span::current().record("account", account.as_str());
        Ok(Account(account))
    }
}

/// Writes a request starts beside its handler (its key's last use), which
/// its answer waits for (`settle`): on Lambda nothing runs once a function
/// has answered.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Pending {
    fn push(&self, task: tokio::task::JoinHandle<()>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }

    /// The request's answer, once the writes it started are done.
    pub(crate) async fn settle(
        mut request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let pending = Pending::default();
        request.extensions_mut().insert(pending.clone());
        let response = next.run(request).await;
        let tasks = std::mem::take(&mut *pending.0.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            // A write that panicked is the write's failure, not the answer's.
            let _ = task.await;
        }
        response
    }
}

/// An operator request, from `Authorization: Bearer <operator key>`.
pub struct Operator;

impl FromRequestParts<Arc<Platform>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers)?;
        accounts::authenticate_operator(platform, key).await?;
        tracing::Span::current().record("account", "operator");
        Ok(Operator)
    }
}

/// The bearer token of the request, or why there is none.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing Authorization header: send Authorization: Bearer <key>")
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not readable text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be: Bearer <key>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be: Bearer <key>",
        ));
    }
    Ok(token.trim())
}

/// Where this service is reached from outside, for URLs in answers:
/// `HOOKLINE_PUBLIC_URL` when set, else the request's own scheme and host.
pub struct BaseUrl(pub String);

impl FromRequestParts<Arc<Platform>> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Arc<Platform>,
    ) -> Result<Self, ApiError> {
        if let Some(url) = &platform.settings.public_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_string()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let scheme = header("x-forwarded-proto").unwrap_or("http");
        Ok(BaseUrl(match header("host") {
            Some(host) => format!("{scheme}://{host}"),
            None => String::new(),
        }))
    }
}

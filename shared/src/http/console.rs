//! The console: a page of plain JavaScript over the public API, served at
//! `/` by `hookline serve` and by the admin function alike. Its files are
//! compiled into the binary (`shared/console/`); nothing is built or
//! fetched. The Content-Security-Policy lets the page run its own script
//! and talk to its own origin only: no inline script, no other origin.

use super::described::{Routes, routes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../console/index.html");
const STYLE: &str = include_str!("../../console/style.css");

/// The console's modules, by name under `/console/`.
const SCRIPTS: [(&str, &str); 5] = [
    ("app.js", include_str!("../../console/app.js")),
    ("ui.js", include_str!("../../console/ui.js")),
    ("webhooks.js", include_str!("../../console/webhooks.js")),
    ("triggers.js", include_str!("../../console/triggers.js")),
    ("campaigns.js", include_str!("../../console/campaigns.js")),
];

/// What the console's files may do.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// What every other answer (the API's JSON) may do in a browser: nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(index))
        .routes(routes!(script))
        .routes(routes!(style))
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut answer = body.into_response();
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer
}

/// The console
///
/// Sign in with an admin key; every page is the public API's.
#[utoipa::path(get, operation_id = "console", path = "/", tag = "console", security(()),
    responses((status = 200, description = "the console's page", content_type = "text/html", body = String)))]
async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// One of the console's script modules
#[utoipa::path(get, operation_id = "console_script", path = "/console/{name}", tag = "console", security(()),
    params(("name" = String, Path, description = "`app.js`, `ui.js`...")),
    responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String),
              (status = 404, description = "no such file", body = crate::http::error::ErrorBody)))]
async fn script(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match SCRIPTS.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => file("text/javascript; charset=utf-8", body),
        None => crate::http::ApiError::not_found("console file").into_response(),
    }
}

/// The console's stylesheet
#[utoipa::path(get, operation_id = "console_style", path = "/console/style.css", tag = "console", security(()),
    responses((status = 200, description = "CSS", content_type = "text/css", body = String)))]
async fn style() -> Response {
    file("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_runs_no_inline_script_and_writes_no_html() {
        // Scripts only by `src` (the policy refuses inline ones anyway).
        assert!(!INDEX.contains("<script>"), "inline script");
        assert!(!INDEX.contains(" on"), "inline handler");
        for (name, script) in SCRIPTS {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                "sessionStorage",
                "document.cookie",
            ] {
                assert!(!script.contains(banned), "{name} uses {banned}");
            }
        }
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
    }

    #[test]
    fn the_first_view_weighs_under_100_kb() {
        let bytes = INDEX.len() + STYLE.len() + SCRIPTS.iter().map(|(_, s)| s.len()).sum::<usize>();
        assert!(bytes < 100 * 1024, "{bytes} bytes");
    }
}

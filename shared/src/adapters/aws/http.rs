//! The SDK's HTTP client: `reqwest`, the HTTP client every delivery uses
//! already, speaking HTTP/1.1 as DynamoDB, SQS and Secrets Manager do.
//!
//! The SDK's own client (aws-smithy-http-client) links HTTP/2 whatever the
//! service speaks, and a second HTTP stack beside reqwest's (see
//! `docs/performance.md` for what each zip gained or lost). The reqwest
//! client here is not the egress client: two pools, and the CA store loaded
//! by each when built, here at the first call to AWS.
//!
//! Timeouts are the SDK's: its orchestrator bounds each attempt
//! (`super::timeouts`); the connect timeout it asks for is this client's.
//! A URL is re-parsed on its way to reqwest, which lowercases its host: an
//! endpoint named with capitals would be signed for one host and sent to
//! another.
//!
//! Calls to AWS go to the endpoints the SDK resolves (AWS's, or moto's in
//! tests): they are not calls out of Hookline to a customer's address, so
//! they do not go through the egress guard, whose resolver refuses the
//! private addresses an endpoint in a VPC may have.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The SDK's HTTP client (see the module's comment).
pub fn https_client() -> SharedHttpClient {
    SharedHttpClient::new(Client::default())
}

/// One `reqwest` client for each connect timeout the SDK asks for (in
/// practice one), built when first asked for: building it loads the CA
/// store.
#[derive(Debug, Default)]
struct Client {
    built: Mutex<Vec<(Option<Duration>, reqwest::Client)>>,
}

impl Client {
    /// One that cannot be built (no CA certificate on the system, say)
    /// fails each call, not the process.
    fn with_connect_timeout(
        &self,
        connect: Option<Duration>,
    ) -> Result<reqwest::Client, Arc<reqwest::Error>> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, client)) = built.iter().find(|(c, _)| *c == connect) {
            return Ok(client.clone());
        }
        crate::egress::install_tls();
        // As the SDK's own client: no redirects, and no proxy from the
        // environment (a stray HTTPS_PROXY would carry signed AWS calls).
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        let client = builder.build().map_err(Arc::new)?;
        built.push((connect, client.clone()));
        Ok(client)
    }
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: self.with_connect_timeout(settings.connect_timeout()),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: Result<reqwest::Client, Arc<reqwest::Error>>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| {
                let why = format!("the HTTP client cannot be built: {e}");
                ConnectorError::other(why.into(), None)
            })?;
            send(&client, request).await
        })
    }
}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    use http_body_util::BodyExt;
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // Read to its end, not peeked at: the SDK's stalled-stream protection
    // watches the body being polled, and fails an attempt whose body it
    // never saw read once its grace period (5 s) is over.
    let body = body
        .collect()
        .await
        .map_err(ConnectorError::user)?
        .to_bytes();
    let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.into()))?;
    let response = client.execute(request).await.map_err(failed)?;
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.bytes().await.map_err(failed)?;
    let mut answer = http::Response::new(SdkBody::from(body));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
}

/// As the SDK's own client classifies them: a timeout or a transport
/// error (an answer cut off while its body was read included: reqwest
/// calls that a decode error), which the SDK's retries try again; a request
/// that cannot be built, which they do not; anything else, left to the SDK
/// to judge.
fn failed(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() || e.is_decode() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

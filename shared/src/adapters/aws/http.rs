//! The SDK's HTTP client: `reqwest`, the HTTP client every delivery uses
//! already, speaking HTTP/1.1 as DynamoDB, SQS and Secrets Manager do.
//!
//! The SDK's own client (aws-smithy-http-client) links HTTP/2 whatever the
//! service speaks, and a second connection pool and TLS set-up beside
//! reqwest's (see `docs/performance.md` for what each zip gained or lost).
//! Timeouts are the SDK's: its orchestrator bounds each attempt
//! (`super::timeouts`); the connect timeout it asks for is this client's.
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
    fn with_connect_timeout(&self, connect: Option<Duration>) -> reqwest::Client {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, client)) = built.iter().find(|(c, _)| *c == connect) {
            return client.clone();
        }
        crate::egress::install_tls();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        let client = builder.build().expect("HTTP client builds");
        built.push((connect, client.clone()));
        client
    }
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: Arc::new(self.with_connect_timeout(settings.connect_timeout())),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: Arc<reqwest::Client>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move { send(&client, request).await })
    }
}

async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // Every request of these services is held whole: none streams.
    let body = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streamed request body".into()))?
        .to_vec();
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

/// As the SDK's own client classifies them: a timeout, or an I/O error the
/// SDK's retries try again.
fn failed(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

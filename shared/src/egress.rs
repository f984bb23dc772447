//! The one HTTP client allowed to call out of Hookline.
//!
//! Every destination address is checked where it is decided: in the DNS
//! resolver, so a host name that resolves to a private address (or is
//! rebound to one) is refused, and for IP literals, which never reach the
//! resolver, before the request is sent. Redirects are not followed (a
//! redirect could lead anywhere) and proxies from the environment are ignored
//! (they would resolve names for us).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("refused destination: {0}")]
    Refused(String),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

/// Makes rustls's ring provider the process's default, which every
/// `reqwest` client uses (reqwest is built without a provider of its own:
/// see the workspace's Cargo.toml). Idempotent; call it before building a
/// `reqwest` client outside this module (tests, benchmarks).
pub fn install_tls() {
    // Err: a provider is installed already (this one, by an earlier call).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client is built on the first call out, not with the platform: it
/// loads the CA store, which only the functions that call out need (a
/// Lambda function that never does, ingest say, starts without it).
#[derive(Clone)]
pub struct Egress {
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    allow_private: bool,
    timeout: Duration,
}

impl Egress {
    /// `timeout` bounds a whole call, connect to last byte.
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        Self {
            client: Arc::default(),
            allow_private,
            timeout,
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            install_tls();
            let allow_private = self.allow_private;
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver { allow_private }))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(self.timeout)
                .connect_timeout(self.timeout.min(Duration::from_secs(10)))
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("Hookline/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("HTTP client builds")
        })
    }

    /// Whether the client (and the CA store) was loaded yet.
    pub fn loaded(&self) -> bool {
        self.client.get().is_some()
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Sends a `method` request to `url`, shaped by `build` (headers, body,
    /// query). The request is built and checked here: no caller holds a
    /// plain `reqwest` builder whose own `send` would skip the URL check.
    ///
    /// ```no_run
    /// # async fn call(egress: hookline::egress::Egress) {
    /// let url = reqwest::Url::parse("https://example.com/hook").unwrap();
    /// let answer = egress
    ///     .send(reqwest::Method::POST, url, |b| b.body("{}"))
    ///     .await;
    /// # }
    /// ```
    ///
    /// ```compile_fail
    /// // There is no way to a raw builder: this does not compile.
    /// let egress = hookline::egress::Egress::new(false, std::time::Duration::from_secs(1));
    /// let url = reqwest::Url::parse("http://169.254.169.254/").unwrap();
    /// let _unchecked = egress.request(reqwest::Method::GET, url).send();
    /// ```
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, EgressError> {
        self.check_url(&url)?;
        let request = build(self.client().request(method, url)).build()?;
        // `build` may not change where it goes.
        self.check_url(request.url())?;
        Ok(self.client().execute(request).await?)
    }

    /// The checks that need no DNS: scheme, and the address when the host is an IP.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Refused(format!(
                "scheme {} is not http or https",
                url.scheme()
            )));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(EgressError::Refused("the URL has no host".into())),
        };
        match forbidden(ip, self.allow_private) {
            Some(why) => Err(EgressError::Refused(format!("{ip} is {why}"))),
            None => Ok(()),
        }
    }
}

struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match forbidden(a.ip(), allow_private) {
                    Some(why) => {
                        refused = Some(format!("{host} resolves to {} ({why})", a.ip()));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(EgressError::Refused(why).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Why an address may not be called, or `None` when it may. Cloud metadata
/// endpoints stay refused even when private targets are allowed: nothing a
/// user configures needs them, and they hold the machine's credentials.
pub fn forbidden(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    let private = match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    };
    match private {
        Some(why) if !allow_private => Some(why),
        _ => None,
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    const AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)) || ip == IpAddr::V6(AWS_V6)
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail); // NAT64 well-known prefix
    }
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(tail); // deprecated IPv4-compatible
    }
    None
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        "a link-local address"
    } else if ip.is_unspecified() || o[0] == 0 {
        "an unspecified address"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "a shared (carrier-grade NAT) address"
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        "a broadcast, multicast or reserved address"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "an IETF protocol address"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "a benchmarking address"
    } else {
        return None;
    })
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "an unspecified address"
    } else if (first & 0xfe00) == 0xfc00 {
        "a unique local (private) address"
    } else if (first & 0xffc0) == 0xfe80 {
        "a link-local address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        let refused = [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "fd00:ec2::254",
            "ff02::1",
        ];
        for ip in refused {
            assert!(
                forbidden(ip.parse().unwrap(), false).is_some(),
                "{ip} must be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(
                forbidden(ip.parse().unwrap(), false),
                None,
                "{ip} must be allowed"
            );
        }
        // Allowing private targets opens private ranges, never metadata.
        assert_eq!(forbidden("127.0.0.1".parse().unwrap(), true), None);
        assert_eq!(forbidden("10.0.0.1".parse().unwrap(), true), None);
        assert!(forbidden("169.254.169.254".parse().unwrap(), true).is_some());
        assert!(forbidden("::ffff:169.254.169.254".parse().unwrap(), true).is_some());
        assert!(forbidden("fd00:ec2::254".parse().unwrap(), true).is_some());
    }

    async fn local_server() -> SocketAddr {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/", get(|| async { "hello" }))
            .route(
                "/redirect",
                get(|| async {
                    (
                        http::StatusCode::FOUND,
                        [(http::header::LOCATION, "http://169.254.169.254/")],
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn guarded_calls() {
        let addr = local_server().await;
        let strict = Egress::new(false, Duration::from_secs(5));
        let open = Egress::new(true, Duration::from_secs(5));
        assert!(!strict.loaded(), "no client before the first call");
        let url = |host: &str, path: &str| {
            reqwest::Url::parse(&format!("http://{host}:{}{path}", addr.port())).unwrap()
        };

        let err = strict
            .send(reqwest::Method::GET, url("127.0.0.1", "/"), |b| b)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EgressError::Refused(_)),
            "literal loopback refused: {err}"
        );
        // A name that resolves to loopback is refused by the resolver.
        let err = strict
            .send(reqwest::Method::GET, url("localhost", "/"), |b| b)
            .await
            .unwrap_err();
        assert!(
            format!("{err:?}").contains("loopback"),
            "resolved loopback refused: {err:?}"
        );

        let ok = open
            .send(reqwest::Method::GET, url("localhost", "/"), |b| b)
            .await
            .unwrap();
        assert_eq!(ok.text().await.unwrap(), "hello");
        assert!(open.loaded());
        // Redirects are answered, not followed.
        let r = open
            .send(reqwest::Method::GET, url("127.0.0.1", "/redirect"), |b| {
                b.header("x-test", "1")
            })
            .await
            .unwrap();
        assert_eq!(r.status(), 302);

        let ftp = reqwest::Url::parse("ftp://example.com/").unwrap();
        assert!(strict.check_url(&ftp).is_err());
    }
}

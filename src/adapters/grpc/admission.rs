//! Admission: the checks every call passes before a service sees it, cheapest
//! first so that refusing costs little.
//!
//! 1. authentication (`authorization: Bearer <key>`) and the role the RPC needs;
//! 2. the caller's rate limit;
//! 3. CPU shedding ([`super::overload`]): while the process's CPU demand
//!    saturates its cores, or its runtime runs late, only a share of the calls that may be shed is admitted and
//!    the rest are refused at once with RESOURCE_EXHAUSTED;
//! 4. a slot of the concurrency limit, taken without waiting: when every slot
//!    is busy the call is refused at once with RESOURCE_EXHAUSTED, so overload
//!    turns into fast refusals that a client can retry elsewhere instead of a
//!    queue in which every call grows slow;
//! 5. a default timeout for callers that set no deadline.
//!
//! Health and reflection skip all five: probes must answer under overload.
//! Nothing here reads a request body, and no refusal echoes a key.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;
use tower::{Layer, Service};

use super::deadline;
use super::overload::Overload;
use super::rate::ClientRates;
use super::rpc::Rpc;
use crate::auth::{Caller, Keyring, Rejection, Role};
use crate::config::ServerConfig;

/// What admission enforces; shared by every connection.
#[derive(Debug)]
pub struct Admission {
    /// `None` when auth is off.
    keyring: Option<Arc<Keyring>>,
    rates: Option<ClientRates>,
    /// `None` when CPU shedding is off.
    overload: Option<Arc<Overload>>,
    permits: Arc<Semaphore>,
    concurrency_max: usize,
    request_timeout: Duration,
    feed_push_timeout: Duration,
}

impl Admission {
    /// Admission as `[server]` configures it; `keyring` is `None` when auth is off.
    pub fn new(config: &ServerConfig, keyring: Option<Arc<Keyring>>) -> Admission {
        Admission {
            keyring,
            rates: ClientRates::new(config.client_rate_per_sec, config.client_burst),
            overload: (config.shed_cpu_percent > 0).then(|| {
                Arc::new(Overload::new(
                    config.shed_cpu_percent,
                    Duration::from_millis(config.shed_lag_ms),
                ))
            }),
            permits: Arc::new(Semaphore::new(config.concurrency_max)),
            concurrency_max: config.concurrency_max,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            feed_push_timeout: Duration::from_millis(config.feed_push_timeout_ms),
        }
    }

    /// The CPU shedding controller, whose sampler the app runs; `None` when
    /// shedding is off.
    pub fn overload(&self) -> Option<&Arc<Overload>> {
        self.overload.as_ref()
    }

    /// Calls admitted and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.concurrency_max - self.permits.available_permits()
    }

    /// The caller, checked against the RPC's role.
    fn authenticate<B>(&self, rpc: Rpc, req: &http::Request<B>) -> Result<Option<Caller>, Status> {
        let Some(keyring) = &self.keyring else {
            return Ok(None);
        };
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let caller = keyring.verify(header).map_err(|r| {
            refused("unauthenticated");
            match r {
                Rejection::Missing => Status::unauthenticated(
                    "no API key: send the header `authorization: Bearer <key>`",
                ),
                Rejection::Unknown => Status::unauthenticated("the API key is not recognised"),
            }
        })?;
        let allowed = [Role::Cart, Role::Orders, Role::Feeds]
            .into_iter()
            .any(|r| caller.roles.has(r) && rpc.allows(r));
        if !allowed {
            refused("permission_denied");
            tracing::debug!(caller = %caller.id, ?rpc, "call refused: role");
            return Err(Status::permission_denied(format!(
                "caller `{}` may not call {rpc:?}: {}",
                caller.id,
                needed_role(rpc)
            )));
        }
        Ok(Some(caller))
    }

    /// The caller's rate limit.
    fn rate_limit<B>(&self, caller: Option<&Caller>, req: &http::Request<B>) -> Result<(), Status> {
        let Some(rates) = &self.rates else {
            return Ok(());
        };
        let client = match caller {
            Some(c) => c.id.to_string(),
            None => peer_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        };
        rates.admit(&client, Instant::now()).map_err(|wait| {
            refused("rate_limited");
            tracing::debug!(%client, "call refused: rate limit");
            Status::resource_exhausted(format!(
                "rate limit of {} calls a second exceeded for `{client}`; retry in {} ms",
                rates.per_sec(),
                wait.as_millis().max(1)
            ))
        })
    }

    /// Whether CPU shedding lets `rpc` in.
    fn shed(&self, rpc: Rpc) -> Result<(), Status> {
        match &self.overload {
            Some(o) if rpc.is_sheddable() && !o.admits() => {
                refused("cpu");
                Err(Status::resource_exhausted(format!(
                    "server overloaded: calls are waiting for CPU, so it admits {:.0}% of them; \
                     retry with backoff or another replica",
                    o.admit_share() * 100.0
                )))
            }
            _ => Ok(()),
        }
    }

    /// A concurrency slot, or RESOURCE_EXHAUSTED at once.
    fn slot(&self) -> Result<InFlight, Status> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("stockroute_grpc_in_flight").increment(1.0);
                Ok(InFlight { _permit: permit })
            }
            Err(_) => {
                refused("overloaded");
                Err(Status::resource_exhausted(format!(
                    "server overloaded: {} calls in flight; retry with backoff or another replica",
                    self.concurrency_max
                )))
            }
        }
    }

    fn timeout_for<B>(&self, rpc: Rpc, req: &http::Request<B>) -> Duration {
        let default = if rpc.is_feed_push() {
            self.feed_push_timeout
        } else {
            self.request_timeout
        };
        req.headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_timeout)
            .map_or(default, |d| d.min(default))
    }
}

/// The caller of a request, as admission recorded it; `None` when auth is off.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// What the refused RPC needs, for the PERMISSION_DENIED message.
fn needed_role(rpc: Rpc) -> &'static str {
    if rpc.allows(Role::Cart) {
        "it needs the cart or orders role"
    } else if rpc.allows(Role::Orders) {
        "it needs the orders role"
    } else {
        "it needs the feeds role"
    }
}

fn refused(reason: &'static str) {
    metrics::counter!("stockroute_grpc_refused_total", "reason" => reason).increment(1);
}

/// The client's IP address, over plain TCP or TLS.
fn peer_ip<B>(req: &http::Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

/// A held concurrency slot; released when the call answers.
struct InFlight {
    _permit: OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("stockroute_grpc_in_flight").decrement(1.0);
    }
}

/// Puts [`Admission`] in front of a service.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    /// A layer enforcing `admission`.
    pub fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admitted<S>;

    fn layer(&self, inner: S) -> Admitted<S> {
        Admitted {
            inner,
            admission: Arc::clone(&self.admission),
        }
    }
}

/// A service behind admission.
#[derive(Debug, Clone)]
pub struct Admitted<S> {
    inner: S,
    admission: Arc<Admission>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for Admitted<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let rpc = Rpc::of_path(req.uri().path());
        if rpc.is_open() {
            return Box::pin(self.inner.call(req));
        }
        let admission = &self.admission;
        let admitted = admission.authenticate(rpc, &req).and_then(|caller| {
            admission.rate_limit(caller.as_ref(), &req)?;
            admission.shed(rpc)?;
            let slot = admission.slot()?;
            Ok((caller, slot))
        });
        let (caller, slot) = match admitted {
            Ok(a) => a,
            Err(status) => return Box::pin(std::future::ready(Ok(status.into_http()))),
        };
        if let Some(caller) = caller {
            req.extensions_mut().insert(caller);
        }
        let timeout = admission.timeout_for(rpc, &req);
        let call = self.inner.call(req);
        Box::pin(async move {
            let _slot = slot;
            match tokio::time::timeout(timeout, call).await {
                Ok(answer) => answer,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;
    use crate::auth::{key_digest_hex, AuthConfig, KeyEntry};

    /// Admission over a service that answers with the caller's id in a header,
    /// and waits for `release` before answering `Quote`.
    fn admitted(
        concurrency_max: usize,
        release: Arc<tokio::sync::Notify>,
    ) -> impl Service<
        http::Request<()>,
        Response = http::Response<()>,
        Error = Infallible,
        Future = BoxFuture<http::Response<()>, Infallible>,
    > + Clone {
        let keyring = Keyring::from_config(&AuthConfig {
            keys: vec![KeyEntry {
                id: "web".into(),
                roles: vec!["cart".into()],
                sha256: key_digest_hex("k-web"),
            }],
            ..AuthConfig::default()
        })
        .unwrap();
        let config = ServerConfig {
            concurrency_max,
            ..ServerConfig::default()
        };
        let admission = Arc::new(Admission::new(&config, Some(Arc::new(keyring))));
        let inner = tower::service_fn(move |req: http::Request<()>| {
            let release = Arc::clone(&release);
            async move {
                let holds = req.uri().path().ends_with("/Quote");
                let request = tonic::Request::from_http(req);
                let id = caller(&request)
                    .map(|c| c.id.to_string())
                    .unwrap_or_default();
                if holds {
                    release.notified().await;
                }
                let mut answer = http::Response::new(());
                answer.headers_mut().insert("x-caller", id.parse().unwrap());
                Ok::<_, Infallible>(answer)
            }
        });
        AdmissionLayer::new(admission).layer(inner)
    }

    fn call(path: &str, key: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::builder().uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        b.body(()).unwrap()
    }

    fn grpc_status(r: &http::Response<()>) -> Option<&str> {
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn the_caller_reaches_the_service_and_refusals_carry_their_code() {
        let release = Arc::new(tokio::sync::Notify::new());
        let svc = admitted(4, Arc::clone(&release));
        let r = svc
            .clone()
            .oneshot(call("/stockroute.v1.Fulfillment/CheckStock", Some("k-web")))
            .await
            .unwrap();
        assert_eq!(r.headers()["x-caller"], "web");
        assert_eq!(grpc_status(&r), None);
        let r = svc
            .clone()
            .oneshot(call("/stockroute.v1.Fulfillment/CheckStock", None))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), Some("16"), "UNAUTHENTICATED");
        let r = svc
            .clone()
            .oneshot(call("/stockroute.v1.Fulfillment/Commit", Some("k-web")))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), Some("7"), "PERMISSION_DENIED");
        let r = svc
            .oneshot(call("/grpc.health.v1.Health/Check", None))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), None, "health needs no key");
    }

    #[tokio::test]
    async fn a_full_server_refuses_at_once_and_frees_the_slot_after_the_answer() {
        let release = Arc::new(tokio::sync::Notify::new());
        let svc = admitted(1, Arc::clone(&release));
        let held = tokio::spawn(
            svc.clone()
                .oneshot(call("/stockroute.v1.Fulfillment/Quote", Some("k-web"))),
        );
        tokio::task::yield_now().await;
        // The one slot is taken: the next call is refused without waiting.
        let refused = tokio::time::timeout(
            Duration::from_secs(1),
            svc.clone()
                .oneshot(call("/stockroute.v1.Fulfillment/CheckStock", Some("k-web"))),
        )
        .await
        .expect("refused at once")
        .unwrap();
        assert_eq!(grpc_status(&refused), Some("8"), "RESOURCE_EXHAUSTED");
        // Probes are never shed.
        let health = svc
            .clone()
            .oneshot(call("/grpc.health.v1.Health/Check", None))
            .await
            .unwrap();
        assert_eq!(grpc_status(&health), None);
        release.notify_one();
        assert_eq!(grpc_status(&held.await.unwrap().unwrap()), None);
        let after = svc
            .oneshot(call("/stockroute.v1.Fulfillment/CheckStock", Some("k-web")))
            .await
            .unwrap();
        assert_eq!(grpc_status(&after), None, "the slot is free again");
    }

    #[tokio::test]
    async fn a_saturated_cpu_sheds_queries_but_never_commit_release_or_health() {
        let config = ServerConfig {
            shed_cpu_percent: 90,
            ..ServerConfig::default()
        };
        let admission = Arc::new(Admission::new(&config, None));
        let overload = Arc::clone(admission.overload().expect("shedding is on"));
        let svc =
            AdmissionLayer::new(admission).layer(tower::service_fn(|_: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(()))
            }));
        let statuses = |path: &str, calls: usize| {
            let svc = svc.clone();
            let path = path.to_owned();
            async move {
                let mut out = Vec::new();
                for _ in 0..calls {
                    let r = svc.clone().oneshot(call(&path, None)).await.unwrap();
                    out.push(grpc_status(&r).map(str::to_owned));
                    if let Some(m) = r.headers().get("grpc-message") {
                        out.push(Some(m.to_str().unwrap().to_owned()));
                    }
                }
                out
            }
        };
        let quiet = statuses("/stockroute.v1.Fulfillment/Quote", 20).await;
        assert!(quiet.iter().all(Option::is_none), "{quiet:?}");

        for _ in 0..100 {
            overload.observe(1.0, Duration::ZERO);
        }
        let quotes = statuses("/stockroute.v1.Fulfillment/Quote", 100).await;
        let refused = quotes.iter().filter(|s| s.as_deref() == Some("8")).count();
        assert!(refused >= 95, "refused {refused} of 100 at the least share");
        assert!(
            quotes
                .iter()
                .flatten()
                .any(|m| m.contains("CPU") && m.contains("another%20replica")),
            "the refusal says why and what to do: {quotes:?}"
        );
        for path in [
            "/stockroute.v1.Fulfillment/Commit",
            "/stockroute.v1.Fulfillment/Release",
            "/grpc.health.v1.Health/Check",
        ] {
            let answers = statuses(path, 20).await;
            assert!(answers.iter().all(Option::is_none), "{path}: {answers:?}");
        }

        for _ in 0..20 {
            overload.observe(0.3, Duration::ZERO);
        }
        let recovered = statuses("/stockroute.v1.Fulfillment/Quote", 20).await;
        assert!(recovered.iter().all(Option::is_none), "{recovered:?}");
    }
}

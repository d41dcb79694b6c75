//! Admission: the checks every call passes before a service sees it, cheapest
//! first so that refusing costs little.
//!
//! 1. authentication (`authorization: Bearer <key>`) and the role the RPC needs;
//! 2. the caller's rate limit;
//! 3. a slot of the concurrency limit, taken without waiting: when every slot
//!    is busy the call is refused at once with RESOURCE_EXHAUSTED, so overload
//!    turns into fast refusals that a client can retry elsewhere instead of a
//!    queue in which every call grows slow;
//! 4. a default timeout for callers that set no deadline.
//!
//! Health and reflection skip all four: probes must answer under overload.
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
            permits: Arc::new(Semaphore::new(config.concurrency_max)),
            concurrency_max: config.concurrency_max,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            feed_push_timeout: Duration::from_millis(config.feed_push_timeout_ms),
        }
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
/// Services pass it to [`Caller::owner`] and [`Caller::access_scope`].
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

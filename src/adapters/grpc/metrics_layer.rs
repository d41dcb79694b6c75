//! Request counts and latency histograms per RPC and status code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

/// Adds [`Metrics`] around a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics { inner }
    }
}

/// Records `stockroute_grpc_requests_total` and `stockroute_grpc_request_seconds`.
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
}

/// The RPC label: our own and the standard services by path; anything else
/// is one bucket, so random paths from a client cannot grow the label set.
fn rpc_label(path: &str) -> String {
    let known = [
        "/stockroute.v1.",
        "/grpc.health.v1.",
        "/grpc.reflection.v1.",
    ];
    if known.iter().any(|p| path.starts_with(p)) && path.len() < 128 {
        path.trim_start_matches('/').to_owned()
    } else {
        "other".to_owned()
    }
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: &str) -> &'static str {
    match code {
        "0" => "OK",
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "6" => "ALREADY_EXISTS",
        "7" => "PERMISSION_DENIED",
        "8" => "RESOURCE_EXHAUSTED",
        "9" => "FAILED_PRECONDITION",
        "10" => "ABORTED",
        "11" => "OUT_OF_RANGE",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        "15" => "DATA_LOSS",
        "16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

impl<S, B, RB> Service<http::Request<B>> for Metrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = rpc_label(req.uri().path());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            // Unary errors travel as trailers-only responses, so the code is in
            // the headers; a response without one is a success whose OK comes
            // in the trailers.
            let status = match &result {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or("OK", code_name),
                Err(_) => "TRANSPORT_ERROR",
            };
            metrics::counter!("stockroute_grpc_requests_total", "rpc" => rpc.clone(), "status" => status).increment(1);
            metrics::histogram!("stockroute_grpc_request_seconds", "rpc" => rpc, "status" => status)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

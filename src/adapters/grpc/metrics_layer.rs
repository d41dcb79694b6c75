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

/// Every method the server answers, by path. Each is its own `rpc` label
/// (the path without its leading slash); anything else, unknown methods of
/// these services included, is `other`, so that paths a client makes up
/// cannot grow the label set. A test checks the list against the services'
/// descriptors.
const RPCS: [&str; 14] = [
    "/stockroute.v1.Fulfillment/CheckStock",
    "/stockroute.v1.Fulfillment/Quote",
    "/stockroute.v1.Fulfillment/Reserve",
    "/stockroute.v1.Fulfillment/Commit",
    "/stockroute.v1.Fulfillment/Release",
    "/stockroute.v1.Fulfillment/GetReservation",
    "/stockroute.v1.Fulfillment/Allocate",
    "/stockroute.v1.Catalog/IngestFeed",
    "/stockroute.v1.Catalog/GetOffers",
    "/stockroute.v1.Catalog/RateShipment",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The `rpc` label of a request path (see [`RPCS`]): static, so recording a
/// call allocates no label.
fn rpc_label(path: &str) -> &'static str {
    RPCS.iter()
        .find(|known| **known == path)
        .map_or("other", |known| &known[1..])
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
            metrics::counter!("stockroute_grpc_requests_total", "rpc" => rpc, "status" => status)
                .increment(1);
            metrics::histogram!("stockroute_grpc_request_seconds", "rpc" => rpc, "status" => status)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every method of the services in `set`, by path.
    fn methods(set: &[u8]) -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(set).expect("a descriptor set");
        let mut out = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    out.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_method_served_has_its_own_label_and_nothing_else_does() {
        let mut served: Vec<String> = [
            crate::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .flat_map(methods)
        .collect();
        served.sort();
        let mut listed: Vec<String> = RPCS.iter().map(|p| (*p).to_owned()).collect();
        listed.sort();
        assert_eq!(listed, served, "RPCS must list exactly the methods served");
        for path in &served {
            assert_eq!(rpc_label(path), &path[1..]);
        }
    }

    #[test]
    fn made_up_paths_share_one_label() {
        for path in [
            "/stockroute.v1.Fulfillment/NoSuchMethod",
            "/stockroute.v1.Fulfillment/Quote/",
            "/stockroute.v1.Fulfillment/quote",
            "/grpc.health.v1.Health/Check2",
            "/elsewhere.Service/Method",
            "",
            "/",
        ] {
            assert_eq!(rpc_label(path), "other", "{path:?}");
        }
    }
}

//! The gRPC edge: the two stockroute services, health and reflection on one
//! port, behind admission (auth, rate and concurrency limits, timeouts),
//! with per-RPC request counts and latency histograms, over TCP or TLS.

pub mod admission;
pub mod catalog;
pub mod coalesce;
pub mod convert;
pub mod deadline;
pub mod fulfillment;
pub mod metrics_layer;
pub mod overload;
pub mod rate;
pub mod reservations;
pub mod rpc;
pub mod status;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::config::Config;
use crate::domain::live_rates::LiveRater;
use crate::domain::realtime::RealtimeStock;
use crate::domain::world::World;
use crate::pb;

pub use admission::Admission;
pub use catalog::CatalogService;
pub use coalesce::Coalesced;
pub use fulfillment::FulfillmentService;
pub use tls::TlsState;

/// What the gRPC server runs with besides the world.
pub struct Edge {
    /// Auth, rate and concurrency limits, timeouts.
    pub admission: Arc<Admission>,
    /// TLS, when configured.
    pub tls: Option<Arc<TlsState>>,
    /// The reservation ledger.
    pub ledger: Arc<dyn crate::domain::ledger::Ledger>,
}

/// The outside services quotes draw on, each optional.
#[derive(Clone, Default)]
pub struct Upstreams {
    /// Carrier APIs for live freight.
    pub live: Option<Arc<dyn LiveRater>>,
    /// Real-time supplier stock.
    pub realtime: Option<Arc<RealtimeStock>>,
}

/// Serves gRPC on `listener` until `shutdown` resolves, then finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    world: Arc<World>,
    config: Arc<Config>,
    upstreams: Upstreams,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    edge: Edge,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let max_bytes = config.server.max_message_bytes;
    let Upstreams { live, realtime } = upstreams;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| {
            // The descriptor set is compiled in; a failure here is a build defect.
            tracing::error!(error = %e, "reflection descriptor rejected");
            e
        });
    // v1alpha too: older grpcurl and tools only speak that one.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    let fulfillment = pb::fulfillment_server::FulfillmentServer::new(FulfillmentService::new(
        Arc::clone(&world),
        Arc::clone(&config),
        live.clone(),
        realtime,
        Arc::clone(&edge.ledger),
    ))
    .max_decoding_message_size(max_bytes)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    let catalog = pb::catalog_server::CatalogServer::new(CatalogService::new(
        world,
        Arc::clone(&config),
        live,
    ))
    .max_decoding_message_size(max_bytes)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    let server = &config.server;
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let mut router = Server::builder()
        .max_concurrent_streams(server.max_concurrent_streams)
        .http2_max_header_list_size(server.max_header_list_bytes)
        .http2_keepalive_interval(secs(server.http2_keepalive_interval_secs))
        .http2_keepalive_timeout(secs(server.http2_keepalive_timeout_secs))
        .layer(metrics_layer::MetricsLayer)
        .layer(admission::AdmissionLayer::new(edge.admission))
        .add_service(health)
        .add_service(fulfillment)
        .add_service(catalog);
    if let Ok(reflection) = reflection {
        router = router.add_service(reflection);
    }
    if let Ok(reflection) = reflection_alpha {
        router = router.add_service(reflection);
    }
    match edge.tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(
                    tls.incoming(listener).map(|s| s.map(Coalesced::new)),
                    shutdown,
                )
                .await
        }
        None => {
            // `serve_with_incoming` ignores the builder's TCP settings (nodelay,
            // keepalive): they must be set on the accepted sockets. Without
            // nodelay a small unary answer can wait for Nagle's timer.
            let incoming = TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(secs(server.tcp_keepalive_secs))
                .map(|s| s.map(Coalesced::new));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    }
}

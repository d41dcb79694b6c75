//! TLS and mutual TLS on the gRPC port, with certificates that reload while
//! the server runs.
//!
//! The certificate, key and client CA are PEM files (a mounted Kubernetes
//! Secret, a cert-manager certificate). They are re-read every
//! `tls.reload_interval_ms`; when their bytes change a new rustls config is
//! built and used for every connection accepted after that. A broken new set
//! (unreadable, key not matching) is logged and the old one stays, so a
//! half-written rotation never takes the port down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// TLS handshakes in progress at once; more connections wait in the
/// listener's backlog, so a flood of slow handshakes cannot take all memory.
const HANDSHAKES_PARALLEL_MAX: usize = 256;

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM), leaf first. With `key_file`, turns TLS on.
    pub cert_file: Option<PathBuf>,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to. Set:
    /// mutual TLS, and a client without a valid certificate cannot connect.
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for a new certificate.
    pub reload_interval_ms: u64,
    /// Longest a client may take to finish its TLS handshake.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            reload_interval_ms: 10_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsConfig {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some() || self.client_ca_file.is_some()
    }
}

/// TLS material that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key that needs a partner is missing.
    #[error("tls: {0}")]
    Incomplete(&'static str),
    /// A file could not be read.
    #[error("tls: cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file's content is not what it should be.
    #[error("tls: {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the set (e.g. the key does not match the certificate).
    #[error("tls: {0}")]
    Rejected(String),
}

/// The bytes of the three files, as last loaded.
#[derive(Debug, PartialEq, Eq)]
struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The server's TLS config in force, and where it comes from.
#[derive(Debug)]
pub struct TlsState {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    current: ArcSwap<rustls::ServerConfig>,
    loaded: Mutex<Material>,
    handshake_timeout: Duration,
}

impl TlsState {
    /// Loads the configured files; `Ok(None)` when TLS is off.
    pub fn from_config(config: &TlsConfig) -> Result<Option<Arc<TlsState>>, TlsError> {
        if !config.enabled() {
            return Ok(None);
        }
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Err(TlsError::Incomplete(
                "cert_file and key_file must both be set (client_ca_file needs them too)",
            ));
        };
        let material = read_material(cert_file, key_file, config.client_ca_file.as_deref())?;
        let server = build(
            &material,
            cert_file,
            key_file,
            config.client_ca_file.as_deref(),
        )?;
        Ok(Some(Arc::new(TlsState {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: config.client_ca_file.clone(),
            current: ArcSwap::from_pointee(server),
            loaded: Mutex::new(material),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        })))
    }

    /// Whether client certificates are required.
    pub fn mutual(&self) -> bool {
        self.client_ca_file.is_some()
    }

    /// Re-reads the files; `Ok(true)` when a new config is in force. On an
    /// error the config in force stays. `app` calls this every
    /// `tls.reload_interval_ms`.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let material = read_material(
            &self.cert_file,
            &self.key_file,
            self.client_ca_file.as_deref(),
        )?;
        if *self.loaded.lock() == material {
            return Ok(false);
        }
        let server = build(
            &material,
            &self.cert_file,
            &self.key_file,
            self.client_ca_file.as_deref(),
        )?;
        self.current.store(Arc::new(server));
        *self.loaded.lock() = material;
        Ok(true)
    }

    /// Accepts TCP connections on `listener` and hands out those that finish
    /// the TLS handshake in time, each with the config in force when it
    /// connected. Stops when the returned stream is dropped.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = mpsc::channel(HANDSHAKES_PARALLEL_MAX);
        let state = Arc::clone(self);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_PARALLEL_MAX));
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    _ = tx.closed() => break,
                    p = Arc::clone(&handshakes).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let accepted = tokio::select! {
                    _ = tx.closed() => break,
                    a = listener.accept() => a,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = tokio_rustls::TlsAcceptor::from(state.current.load_full());
                let (tx, timeout) = (tx.clone(), state.handshake_timeout);
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("stockroute_tls_handshake_failures_total")
                                .increment(1);
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("stockroute_tls_handshake_failures_total")
                                .increment(1);
                            tracing::debug!(%peer, "tls handshake timed out");
                        }
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_material(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Material, TlsError> {
    Ok(Material {
        cert: read(cert)?,
        key: read(key)?,
        client_ca: client_ca.map(read).transpose()?,
    })
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate list: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("holds no certificate".into()));
    }
    Ok(certs)
}

/// Builds the rustls config: TLS 1.2 and 1.3, HTTP/2 only.
fn build(
    m: &Material,
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = certificates(&m.cert, cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&m.key).map_err(|e| TlsError::Invalid {
        path: key_file.to_path_buf(),
        message: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    let builder = match (client_ca_file, &m.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(pem, path)? {
                roots.add(cert).map_err(|e| TlsError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError::Rejected(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rejected(format!("{}: {e}", cert_file.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

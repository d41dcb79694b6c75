//! TLS and mutual TLS on the gRPC port, and certificates that change while
//! the server runs. Every certificate is made here, in the test.

use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use stockroute::pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{line, spawn_app_with, us, TestApp};

/// A test CA that signs leaf certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `name`: (certificate PEM, key PEM).
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    // Written aside and renamed, as a Secret volume update is: never half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

async fn tls_channel(
    app: &TestApp,
    ca: &Ca,
    identity: Option<&(String, String)>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(ca.pem()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{}", app.app.grpc_addr))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    // The handshake may only fail on first use (client certificates under TLS 1.3).
    quote(channel.clone()).await?;
    Ok(channel)
}

async fn quote(channel: Channel) -> Result<(), String> {
    pb::fulfillment_client::FulfillmentClient::new(channel)
        .quote(pb::QuoteRequest {
            lines: vec![line("SR-000001", 1)],
            ship_to: us("10001"),
            options: Some(pb::QuoteOptions {
                allow_partial: true,
                ..Default::default()
            }),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// A server over TLS answers TLS clients that trust its CA and nobody else;
/// when its certificate files change, new connections get the new
/// certificate without a restart, and a broken replacement keeps the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_and_reloads_a_swapped_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (Ca::new("test CA one"), Ca::new("test CA two"));
    let (cert, key) = ca1.leaf("localhost");
    let cert_file = write(certs.path(), "tls.crt", &cert);
    let key_file = write(certs.path(), "tls.key", &key);
    let app = spawn_app_with(|c| {
        c.tls.cert_file = Some(cert_file.clone());
        c.tls.key_file = Some(key_file.clone());
        c.tls.reload_interval_ms = 50;
    })
    .await;
    // `spawn_app` connected in plain text, which a TLS port must not serve.
    assert!(
        quote(app.channel.clone()).await.is_err(),
        "plain text refused"
    );
    tls_channel(&app, &ca1, None)
        .await
        .expect("TLS with the first CA");
    assert!(tls_channel(&app, &ca2, None).await.is_err());

    // A broken replacement: a key that is not the certificate's.
    let (_, other_key) = ca2.leaf("localhost");
    write(certs.path(), "tls.key", &other_key);
    tokio::time::sleep(Duration::from_millis(300)).await;
    tls_channel(&app, &ca1, None)
        .await
        .expect("the old certificate stays when the new set is broken");

    let (cert2, key2) = ca2.leaf("localhost");
    write(certs.path(), "tls.key", &key2);
    write(certs.path(), "tls.crt", &cert2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tls_channel(&app, &ca2, None).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tls_channel(&app, &ca1, None).await.is_err(),
        "the old certificate is no longer served"
    );
}

/// With a client CA configured, only clients presenting a certificate it
/// signed get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, stranger_ca) = (
        Ca::new("server CA"),
        Ca::new("client CA"),
        Ca::new("stranger CA"),
    );
    let (cert, key) = server_ca.leaf("localhost");
    let cert_file = write(certs.path(), "tls.crt", &cert);
    let key_file = write(certs.path(), "tls.key", &key);
    let ca_file = write(certs.path(), "clients.pem", &client_ca.pem());
    let app = spawn_app_with(|c| {
        c.tls.cert_file = Some(cert_file.clone());
        c.tls.key_file = Some(key_file.clone());
        c.tls.client_ca_file = Some(ca_file.clone());
    })
    .await;
    assert!(
        tls_channel(&app, &server_ca, None).await.is_err(),
        "no client certificate"
    );
    let stranger = stranger_ca.leaf("web-cart");
    assert!(
        tls_channel(&app, &server_ca, Some(&stranger))
            .await
            .is_err(),
        "a certificate from another CA"
    );
    let member = client_ca.leaf("web-cart");
    tls_channel(&app, &server_ca, Some(&member))
        .await
        .expect("a certificate from the client CA");
}

/// Half a TLS configuration stops start-up with a message naming what is missing.
#[tokio::test]
async fn incomplete_tls_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_small_world(dir.path());
    let mut config = crate::helpers::test_config(dir.path());
    config.tls.cert_file = Some(dir.path().join("tls.crt"));
    let err = stockroute::app::start(config).await.unwrap_err();
    assert!(format!("{err:#}").contains("key_file"), "{err:#}");
}

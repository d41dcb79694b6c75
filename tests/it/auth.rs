//! API keys and roles: who may call what, and what a refused caller learns.

use stockroute::auth::{key_digest_hex, AuthMode, KeyEntry};
use stockroute::config::Config;
use stockroute::pb;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::{line, spawn_app_with, us, TestApp};

pub const CART_KEY: &str = "sr_cart_0123456789abcdef0123456789abcdef";
pub const OTHER_CART_KEY: &str = "sr_cart_fedcba9876543210fedcba9876543210";
pub const ORDERS_KEY: &str = "sr_orders_0123456789abcdef0123456789abcd";
pub const FEEDS_KEY: &str = "sr_feeds_0123456789abcdef0123456789abcde";

fn entry(id: &str, role: &str, key: &str) -> KeyEntry {
    KeyEntry {
        id: id.into(),
        roles: vec![role.into()],
        sha256: key_digest_hex(key),
    }
}

/// A server that wants keys: two carts, an order service and a feed pusher.
pub async fn spawn_with_keys() -> TestApp {
    spawn_with_keys_and(|_| {}).await
}

/// Like `spawn_with_keys`, with the config changed by `change` too.
pub async fn spawn_with_keys_and(change: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        change(c);
        c.auth.mode = AuthMode::ApiKeys;
        c.auth.keys = vec![
            entry("web-cart", "cart", CART_KEY),
            entry("app-cart", "cart", OTHER_CART_KEY),
            entry("oms", "orders", ORDERS_KEY),
            entry("feeder", "feeds", FEEDS_KEY),
        ];
    })
    .await
}

/// A request carrying `key` as a bearer token.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut r = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().expect("header");
    r.metadata_mut().insert("authorization", value);
    r
}

fn quote() -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines: vec![line("SR-000001", 1)],
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..Default::default()
        }),
    }
}

fn client(app: &TestApp) -> pb::fulfillment_client::FulfillmentClient<Channel> {
    app.fulfillment()
}

/// No key or a wrong one is UNAUTHENTICATED; health stays open for probes.
#[tokio::test]
async fn missing_or_wrong_keys_are_unauthenticated() {
    let app = spawn_with_keys().await;
    let mut c = client(&app);
    let err = c.quote(quote()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("authorization: Bearer"), "{err:?}");
    for wrong in ["sr_cart_0123456789abcdef0123456789abcdee", "x", ""] {
        let err = c.quote(with_key(quote(), wrong)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "key {wrong:?}: {err:?}");
        assert!(!err.message().contains(wrong) || wrong.is_empty());
    }
    // Another scheme is not a bearer key.
    let mut r = Request::new(quote());
    r.metadata_mut().insert(
        "authorization",
        format!("Basic {CART_KEY}").parse().unwrap(),
    );
    assert_eq!(c.quote(r).await.unwrap_err().code(), Code::Unauthenticated);
    // The catalog is guarded the same way.
    let err = app
        .catalog()
        .get_offers(pb::GetOffersRequest {
            sku: "SR-000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Probes carry no key.
    let health = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .expect("health needs no key");
    assert_eq!(health.into_inner().status, 1);
    // The right key works.
    c.quote(with_key(quote(), CART_KEY))
        .await
        .expect("a cart may quote");
}

/// Each role reaches exactly its RPCs: a cart cannot commit, allocate or
/// push feeds; a feed pusher cannot quote; an order service may commit.
#[tokio::test]
async fn roles_limit_what_a_key_may_call() {
    let app = spawn_with_keys().await;
    let mut c = client(&app);
    let err = c
        .commit(with_key(
            pb::CommitRequest {
                reservation_id: "r-1".into(),
                order_ref: "o-1".into(),
            },
            CART_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("orders role"), "{err:?}");
    let err = c
        .allocate(with_key(pb::AllocateRequest::default(), CART_KEY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .catalog()
        .get_offers(with_key(
            pb::GetOffersRequest {
                sku: "SR-000001".into(),
            },
            CART_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c.quote(with_key(quote(), FEEDS_KEY)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    app.catalog()
        .get_offers(with_key(
            pb::GetOffersRequest {
                sku: "SR-000001".into(),
            },
            FEEDS_KEY,
        ))
        .await
        .expect("a feed pusher may inspect offers");
    c.quote(with_key(quote(), ORDERS_KEY))
        .await
        .expect("an order service may quote");
    // An order service passes admission for Commit; what the service then
    // says about this unknown reservation is not an auth answer.
    let err = c
        .commit(with_key(
            pb::CommitRequest {
                reservation_id: "r-1".into(),
                order_ref: "o-1".into(),
            },
            ORDERS_KEY,
        ))
        .await
        .unwrap_err();
    assert!(
        !matches!(err.code(), Code::PermissionDenied | Code::Unauthenticated),
        "{err:?}"
    );
}

/// A config that names no key and does not turn auth off refuses to start.
#[tokio::test]
async fn a_config_without_keys_must_turn_auth_off_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_small_world(dir.path());
    let mut config = crate::helpers::test_config(dir.path());
    config.auth.mode = AuthMode::ApiKeys;
    let err = stockroute::app::start(config).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("no API keys configured") && message.contains("auth.mode"),
        "{message}"
    );
}

/// With every log on at the finest level, no key (valid or not) ever reaches
/// the log; the caller's id does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_appear_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_small_world(dir.path());
    let wrong = "sr_wrong_5555555555555555555555555555555555";
    let config = format!(
        "[auth]\n\
         [[auth.keys]]\nid = \"web-cart\"\nroles = [\"cart\"]\nsha256 = \"{}\"\n",
        key_digest_hex(CART_KEY)
    );
    let config_path = dir.path().join("with-keys.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut server = crate::helpers::ServerProcess::spawn(
        &[
            "--config",
            config_path.to_str().unwrap(),
            "--data",
            dir.path().to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &[
            ("RUST_LOG", "trace"),
            ("STOCKROUTE_FEEDS__SCHEDULE", "false"),
        ],
    );
    let (grpc, _) = server.addresses();
    server.wait_for("ready", std::time::Duration::from_secs(60));
    let channel = crate::helpers::connect(grpc.parse().unwrap()).await;
    let mut c = pb::fulfillment_client::FulfillmentClient::new(channel.clone());
    c.quote(with_key(quote(), CART_KEY)).await.expect("quote");
    assert_eq!(
        c.quote(with_key(quote(), wrong)).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let denied = c
        .commit(with_key(pb::CommitRequest::default(), CART_KEY))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    server.terminate();
    server.wait_for("stopped", std::time::Duration::from_secs(30));
    assert!(server
        .wait_exit(std::time::Duration::from_secs(10))
        .success());

    let logs = server.stderr_text();
    assert!(
        logs.lines().count() > 100 && logs.contains("\"level\":\"TRACE\""),
        "trace logging was on"
    );
    assert!(logs.contains("web-cart"), "the caller's id is logged");
    for secret in [CART_KEY, wrong, &CART_KEY[8..], &wrong[9..]] {
        assert!(!logs.contains(secret), "a key reached the log");
    }
}

/// `stockroute hash-key` prints the digest the config wants; `--generate`
/// prints a fresh key and an entry that, pasted into a config, accepts it.
#[test]
fn hash_key_prints_digests_and_usable_entries() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockroute"))
        .arg("hash-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CART_KEY}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        key_digest_hex(CART_KEY)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_stockroute"))
        .args(["hash-key", "--generate", "--id", "oms", "--role", "orders"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("sr_"))
        .map(|k| format!("sr_{k}"))
        .expect("the key is printed");
    let config = stockroute::config::Config::from_toml_with_env(&text, None, []).unwrap();
    let ring = stockroute::auth::Keyring::from_config(&config.auth).unwrap();
    let caller = ring
        .verify(Some(format!("Bearer {key}").as_bytes()))
        .unwrap();
    assert_eq!(&*caller.id, "oms");
    assert!(caller.sees_all_reservations());
}

/// `check-config` applies start-up's rules without the files: a config
/// must name keys or turn auth off, and inline keys must be well formed.
#[test]
fn check_config_applies_the_start_up_rules() {
    use stockroute::app::check_config;
    let parse = |text: &str| {
        let mut c = Config::from_toml_with_env(text, None, []).unwrap();
        c.base_dir = Some(std::path::PathBuf::from("/etc/stockroute"));
        c
    };
    let err = check_config(&parse("")).unwrap_err().to_string();
    assert!(err.contains("no API keys configured"), "{err}");
    check_config(&parse("[auth]\nmode = \"off\"\n")).unwrap();
    check_config(&parse("[auth]\nkeys_file = \"/keys/keys.toml\"\n")).unwrap();
    let bad_key = "[[auth.keys]]\nid = \"a\"\nroles = [\"cart\"]\nsha256 = \"00\"\n";
    let err = format!("{:#}", check_config(&parse(bad_key)).unwrap_err());
    assert!(err.contains("sha256"), "{err}");
    let half_tls = "[auth]\nmode = \"off\"\n[tls]\ncert_file = \"/tls/tls.crt\"\n";
    assert!(check_config(&parse(half_tls)).is_err());
}

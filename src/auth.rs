//! API keys: who may call, in which roles.
//!
//! Keys are held only as SHA-256 digests (config `[[auth.keys]]` or the file
//! `auth.keys_file`), so a leaked config or Secret does not hand out a key. A
//! presented key is hashed and compared against every digest in constant
//! time. Keys are random 256-bit strings made by `stockroute hash-key
//! --generate`, so an unsalted fast hash is enough: there is nothing to guess.
//!
//! This module never logs, formats or stores a presented key; only its
//! digest lives past `Keyring::verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::limits;

/// What a caller's key allows (`[[auth.keys]] roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Shopping carts: stock checks, quotes, and their own reservations.
    Cart,
    /// Order services: all of Fulfillment, every reservation.
    Orders,
    /// Feed pushers and operators: the Catalog service.
    Feeds,
}

impl Role {
    /// The role's name in config.
    pub fn name(self) -> &'static str {
        match self {
            Role::Cart => "cart",
            Role::Orders => "orders",
            Role::Feeds => "feeds",
        }
    }

    /// Parses a role name from config.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "cart" => Some(Role::Cart),
            "orders" => Some(Role::Orders),
            "feeds" => Some(Role::Feeds),
            _ => None,
        }
    }
}

/// Bytes of a SHA-256 digest.
const DIGEST_BYTES: usize = 32;

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"api_keys"` (every call but health and reflection needs a key) or
    /// `"off"` (open; logged loudly at start-up).
    pub mode: AuthMode,
    /// Keys held in the config itself.
    pub keys: Vec<KeyEntry>,
    /// A TOML file of `[[keys]]` entries, re-read while the server runs so
    /// that keys rotate without a restart (a mounted Kubernetes Secret).
    pub keys_file: Option<PathBuf>,
    /// How often `keys_file` is checked for changes.
    pub reload_interval_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::ApiKeys,
            keys: Vec::new(),
            keys_file: None,
            reload_interval_ms: 10_000,
        }
    }
}

/// Whether callers must present a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Bearer API keys.
    ApiKeys,
    /// No authentication at all.
    Off,
}

/// One key as configured: a name, its roles, and the digest of the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The caller's name: shown in logs and metrics, and the owner of the
    /// reservations it makes. Not secret.
    pub id: String,
    /// `cart`, `orders` and/or `feeds`.
    pub roles: Vec<String>,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
}

/// The keys file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

/// A key entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// An entry is malformed; the message names it by position and id.
    #[error("auth key {index} (`{id}`): {message}")]
    Entry {
        /// Position in its list, from 0.
        index: usize,
        /// The entry's id as written (truncated).
        id: String,
        /// What is wrong.
        message: String,
    },
    /// Two entries share an id, so reservation ownership would be ambiguous.
    #[error("auth key id `{0}` appears twice")]
    DuplicateId(String),
    /// The keys file could not be read or parsed.
    #[error("auth keys file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A set of roles, small enough to copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    cart: bool,
    orders: bool,
    feeds: bool,
}

impl Roles {
    /// Whether the set holds `role`.
    pub fn has(self, role: Role) -> bool {
        match role {
            Role::Cart => self.cart,
            Role::Orders => self.orders,
            Role::Feeds => self.feeds,
        }
    }

    fn add(&mut self, role: Role) {
        match role {
            Role::Cart => self.cart = true,
            Role::Orders => self.orders = true,
            Role::Feeds => self.feeds = true,
        }
    }

    /// Roles from their config names.
    pub fn parse(names: &[String]) -> Result<Roles, String> {
        if names.is_empty() {
            return Err("names no role (cart, orders, feeds)".into());
        }
        let mut roles = Roles::default();
        for name in names {
            let role = Role::parse(name.trim()).ok_or_else(|| {
                format!(
                    "unknown role `{}` (cart, orders, feeds)",
                    limits::truncate_for_message(name)
                )
            })?;
            roles.add(role);
        }
        Ok(roles)
    }
}

/// An authenticated caller, as the services see it (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id: the owner of what this caller reserves.
    pub id: Arc<str>,
    /// What it may do.
    pub roles: Roles,
}

impl Caller {
    /// Whether this caller may see every reservation, not only its own.
    pub fn sees_all_reservations(&self) -> bool {
        self.roles.has(Role::Orders)
    }

    /// The owner to record on a reservation this caller makes: always its id,
    /// so that a cart can never reach what an order service made, and the
    /// reverse is a matter of role.
    pub fn owner(caller: Option<&Caller>) -> Option<String> {
        caller.map(|c| c.id.to_string())
    }

    /// The owner to check access to an existing reservation with: the
    /// caller's id, or `None` (every reservation) for callers whose role sees
    /// all of them and when auth is off.
    pub fn access_scope(caller: Option<&Caller>) -> Option<String> {
        caller
            .filter(|c| !c.sees_all_reservations())
            .map(|c| c.id.to_string())
    }
}

#[derive(Debug)]
struct Key {
    digest: [u8; DIGEST_BYTES],
    caller: Caller,
}

/// The keys in force; swapped whole when the keys file changes.
#[derive(Debug)]
pub struct Keyring {
    keys: ArcSwap<Vec<Key>>,
    /// Keys from the config; the file's keys are added to these.
    fixed: Vec<KeyEntry>,
    file: Option<PathBuf>,
    /// The file's bytes as last loaded, to skip re-parsing an unchanged file.
    file_bytes: parking_lot::Mutex<Option<Vec<u8>>>,
}

/// Why a presented key was not accepted. Carries nothing of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `authorization` header, or not `Bearer <key>`.
    Missing,
    /// A key that no entry matches.
    Unknown,
}

impl Keyring {
    /// Builds the keyring from config, reading `keys_file` once.
    pub fn from_config(config: &AuthConfig) -> Result<Keyring, KeyringError> {
        let ring = Keyring {
            keys: ArcSwap::from_pointee(Vec::new()),
            fixed: config.keys.clone(),
            file: config.keys_file.clone(),
            file_bytes: parking_lot::Mutex::new(None),
        };
        let file_entries = match &ring.file {
            Some(path) => {
                let bytes = read_keys_file(path)?;
                let entries = parse_keys_file(path, &bytes)?;
                *ring.file_bytes.lock() = Some(bytes);
                entries
            }
            None => Vec::new(),
        };
        ring.keys
            .store(Arc::new(build(&ring.fixed, &file_entries)?));
        Ok(ring)
    }

    /// How many keys are in force.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// True when no key is in force.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the keys file; returns `Ok(true)` when the keys changed. On
    /// an error the keys in force stay.
    pub fn reload(&self) -> Result<bool, KeyringError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let bytes = read_keys_file(path)?;
        if self.file_bytes.lock().as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        let entries = parse_keys_file(path, &bytes)?;
        self.keys.store(Arc::new(build(&self.fixed, &entries)?));
        *self.file_bytes.lock() = Some(bytes);
        Ok(true)
    }

    /// The caller an `authorization` header value names.
    pub fn verify(&self, authorization: Option<&[u8]>) -> Result<Caller, Rejection> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(Rejection::Missing)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, token);
        let keys = self.keys.load();
        // Every digest is compared, so the time taken does not depend on
        // which entry (if any) matches.
        let mut found: Option<&Key> = None;
        for key in keys.iter() {
            if bool::from(key.digest.as_slice().ct_eq(digest.as_ref())) {
                found = Some(key);
            }
        }
        found.map(|k| k.caller.clone()).ok_or(Rejection::Unknown)
    }
}

/// The key of `Bearer <key>`; `None` for any other shape.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || value.len() > SCHEME.len() + limits::API_KEY_BYTES_MAX {
        return None;
    }
    let (scheme, token) = value.split_at(SCHEME.len());
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn read_keys_file(path: &Path) -> Result<Vec<u8>, KeyringError> {
    std::fs::read(path).map_err(|e| KeyringError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn parse_keys_file(path: &Path, bytes: &[u8]) -> Result<Vec<KeyEntry>, KeyringError> {
    let file_err = |message: String| KeyringError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| file_err("not UTF-8".into()))?;
    let parsed: KeysFile = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;
    Ok(parsed.keys)
}

/// Checks and compiles the entries of both sources.
fn build(fixed: &[KeyEntry], from_file: &[KeyEntry]) -> Result<Vec<Key>, KeyringError> {
    let mut keys: Vec<Key> = Vec::with_capacity(fixed.len() + from_file.len());
    for (index, entry) in fixed.iter().chain(from_file).enumerate() {
        let key = compile(entry).map_err(|message| KeyringError::Entry {
            index,
            id: limits::truncate_for_message(&entry.id),
            message,
        })?;
        if keys.iter().any(|k| k.caller.id == key.caller.id) {
            return Err(KeyringError::DuplicateId(key.caller.id.to_string()));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn compile(entry: &KeyEntry) -> Result<Key, String> {
    let id = entry.id.trim();
    if id.is_empty() {
        return Err("id is empty".into());
    }
    limits::check_text(id, limits::CALLER_ID_BYTES_MAX).map_err(|e| format!("id {e}"))?;
    let roles = Roles::parse(&entry.roles)?;
    let digest = parse_digest(entry.sha256.trim())
        .ok_or("sha256 must be 64 hexadecimal digits (the SHA-256 of the key)")?;
    Ok(Key {
        digest,
        caller: Caller {
            id: Arc::from(id),
            roles,
        },
    })
}

fn parse_digest(hex: &str) -> Option<[u8; DIGEST_BYTES]> {
    if hex.len() != DIGEST_BYTES * 2 {
        return None;
    }
    let mut out = [0u8; DIGEST_BYTES];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex SHA-256 of a key, as `[[auth.keys]] sha256` wants it.
pub fn key_digest_hex(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.trim().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random key: 32 bytes from the system's generator, as 64 hex digits
/// behind a `sr_` prefix that makes leaked keys easy to grep for.
pub fn generate_key() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random generator failed".to_owned())?;
    Ok(format!(
        "sr_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, roles: &[&str], key: &str) -> KeyEntry {
        KeyEntry {
            id: id.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            sha256: key_digest_hex(key),
        }
    }

    fn ring_of(entries: Vec<KeyEntry>) -> Keyring {
        Keyring::from_config(&AuthConfig {
            keys: entries,
            ..AuthConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_configured_key_names_its_caller_and_roles() {
        let ring = ring_of(vec![
            entry("web", &["cart"], "k-web"),
            entry("oms", &["orders", "cart"], "k-oms"),
        ]);
        let web = ring.verify(Some(b"Bearer k-web")).unwrap();
        assert_eq!(&*web.id, "web");
        assert!(web.roles.has(Role::Cart) && !web.roles.has(Role::Orders));
        let oms = ring.verify(Some(b"bearer   k-oms ")).unwrap();
        assert!(oms.sees_all_reservations());
    }

    #[test]
    fn missing_malformed_and_unknown_keys_are_refused() {
        let ring = ring_of(vec![entry("web", &["cart"], "k-web")]);
        assert_eq!(ring.verify(None), Err(Rejection::Missing));
        assert_eq!(ring.verify(Some(b"k-web")), Err(Rejection::Missing));
        assert_eq!(ring.verify(Some(b"Basic k-web")), Err(Rejection::Missing));
        assert_eq!(ring.verify(Some(b"Bearer ")), Err(Rejection::Missing));
        assert_eq!(ring.verify(Some(b"Bearer k-we")), Err(Rejection::Unknown));
        let huge = format!("Bearer {}", "x".repeat(100_000));
        assert_eq!(ring.verify(Some(huge.as_bytes())), Err(Rejection::Missing));
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |e: KeyEntry| {
            Keyring::from_config(&AuthConfig {
                keys: vec![e],
                ..AuthConfig::default()
            })
            .unwrap_err()
            .to_string()
        };
        let mut e = entry("web", &["cart"], "k");
        e.sha256 = "abc".into();
        assert!(bad(e).contains("64 hexadecimal"));
        assert!(bad(entry("web", &["admin"], "k")).contains("unknown role `admin`"));
        assert!(bad(entry("web", &[], "k")).contains("no role"));
        assert!(bad(entry("we\nb", &["cart"], "k")).contains("control character"));
        let dup = Keyring::from_config(&AuthConfig {
            keys: vec![entry("a", &["cart"], "1"), entry("a", &["feeds"], "2")],
            ..AuthConfig::default()
        })
        .unwrap_err();
        assert!(dup.to_string().contains("twice"));
    }

    #[test]
    fn the_keys_file_reloads_and_a_broken_file_keeps_the_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let write = |entries: &[(&str, &str)]| {
            let text: String = entries
                .iter()
                .map(|(id, key)| {
                    format!(
                        "[[keys]]\nid = \"{id}\"\nroles = [\"cart\"]\nsha256 = \"{}\"\n",
                        key_digest_hex(key)
                    )
                })
                .collect();
            std::fs::write(&path, text).unwrap();
        };
        write(&[("old", "k-old")]);
        let ring = Keyring::from_config(&AuthConfig {
            keys_file: Some(path.clone()),
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(ring.verify(Some(b"Bearer k-old")).is_ok());
        assert!(!ring.reload().unwrap(), "unchanged file");
        write(&[("new", "k-new")]);
        assert!(ring.reload().unwrap());
        assert!(ring.verify(Some(b"Bearer k-new")).is_ok());
        assert_eq!(ring.verify(Some(b"Bearer k-old")), Err(Rejection::Unknown));
        std::fs::write(&path, "[[keys]]\nid = 3\n").unwrap();
        assert!(ring.reload().is_err());
        assert!(ring.verify(Some(b"Bearer k-new")).is_ok());
    }

    #[test]
    fn generated_keys_are_distinct_and_hash_to_64_hex_digits() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sr_") && a.len() == 67);
        let h = key_digest_hex(&a);
        assert_eq!(h.len(), 64);
        assert!(parse_digest(&h).is_some());
    }
}

//! OAuth client-credentials token cache shared by one carrier's callers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{read_limited, seconds, snippet, FallbackReason};

/// A token as issued.
#[derive(Debug)]
pub(super) struct Token {
    pub(super) access_token: String,
    pub(super) expires_in: Duration,
}

struct Held {
    token: Arc<str>,
    valid_until: Instant,
}

/// Holds the current token; concurrent callers that find none share one fetch (the first takes
/// the lock and fetches, the rest wait on the lock and then find the fresh token).
pub(super) struct TokenCache {
    held: Mutex<Option<Held>>,
}

/// How long before the issuer's expiry a token stops being used: a tenth of its lifetime,
/// at most 60 s, so a token is never presented in its last moments.
fn margin(expires_in: Duration) -> Duration {
    (expires_in / 10).min(Duration::from_secs(60))
}

impl TokenCache {
    pub(super) fn new() -> Self {
        TokenCache {
            held: Mutex::new(None),
        }
    }

    /// The current token, fetching one with `fetch` if there is none or it is about to expire.
    pub(super) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<str>, FallbackReason>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, FallbackReason>>,
    {
        let mut held = self.held.lock().await;
        let now = Instant::now();
        if let Some(h) = held.as_ref() {
            if now < h.valid_until {
                return Ok(h.token.clone());
            }
        }
        *held = None;
        let fresh = fetch().await?;
        if fresh.access_token.is_empty() {
            return Err(FallbackReason::Auth(
                "token endpoint issued an empty token".into(),
            ));
        }
        let token: Arc<str> = Arc::from(fresh.access_token);
        let lifetime = fresh.expires_in.saturating_sub(margin(fresh.expires_in));
        *held = Some(Held {
            token: token.clone(),
            valid_until: now.checked_add(lifetime).unwrap_or(now),
        });
        Ok(token)
    }

    /// Forgets `refused` if it is still the current token (a concurrent caller may already
    /// have replaced it, in which case the replacement is kept).
    pub(super) async fn invalidate(&self, refused: &str) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| &*h.token == refused) {
            *held = None;
        }
    }
}

/// What both carriers' token endpoints answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Reads a token endpoint's answer: 5xx is the carrier being down, any other
/// failure is an authentication problem, and a lifetime that is missing or
/// unreadable counts as `default_secs`.
pub(super) async fn token_from_response(
    resp: reqwest::Response,
    default_secs: u64,
) -> Result<Token, FallbackReason> {
    let status = resp.status();
    let body = read_limited(resp).await?;
    if status.is_server_error() {
        return Err(FallbackReason::Http(status.as_u16()));
    }
    if !status.is_success() {
        return Err(FallbackReason::Auth(format!(
            "token endpoint answered {}: {}",
            status.as_u16(),
            snippet(&body)
        )));
    }
    parse_token(&body, default_secs)
}

/// Parses a successful token endpoint's body; a lifetime that is missing or
/// unreadable counts as `default_secs`.
pub(super) fn parse_token(body: &[u8], default_secs: u64) -> Result<Token, FallbackReason> {
    let t: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| FallbackReason::Auth(format!("token response: {e}")))?;
    let secs = t
        .expires_in
        .as_ref()
        .and_then(seconds)
        .unwrap_or(default_secs);
    Ok(Token {
        access_token: t.access_token,
        expires_in: Duration::from_secs(secs),
    })
}

//! The ledger's background work: migrations and the readiness probe, the
//! announcer that tells other replicas about changed counts, and the
//! listener that hears theirs.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

use super::error::{describe, Fail};
use super::holds_cache::{self, Count};
use super::schema::{self, Flavor};
use super::{ops, sql, Inner};
use crate::domain::ledger::LedgerHealth;

/// How often a ledger that is not ready tries again.
const DOWN_RETRY: Duration = Duration::from_millis(250);
/// How long the announcer gathers changes before sending them.
const ANNOUNCE_GATHER: Duration = Duration::from_millis(5);

/// Sleeps for `d`; false when told to stop meanwhile.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.changed() => false,
    }
}

/// Applies the migrations (until they succeed), then keeps the holds cache
/// and the readiness fresh with a full read every poll interval.
pub(crate) async fn maintain(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        if !inner.schema_ready.load(Ordering::Acquire) {
            match migrate_once(&inner).await {
                Ok(flavor) => {
                    tracing::info!(database = %flavor.version, "ledger schema up to date");
                    let _ = inner.flavor.set(flavor);
                    inner.schema_ready.store(true, Ordering::Release);
                }
                Err(why) => inner.set_health(LedgerHealth::Down(why)),
            }
        }
        if inner.schema_ready.load(Ordering::Acquire) {
            let probe =
                tokio::time::timeout(inner.settings.call_budget, ops::refresh(&inner)).await;
            match probe {
                Ok(Ok(())) => inner.set_health(LedgerHealth::Ready),
                Ok(Err(Fail::Down(why))) => inner.set_health(LedgerHealth::Down(why)),
                Ok(Err(Fail::Ledger(e))) => inner.set_health(LedgerHealth::Down(e.to_string())),
                // Busy or conflicting: the database answers; keep the health.
                Ok(Err(Fail::Busy(_) | Fail::Conflict(_))) => {}
                Err(_) => inner.set_health(LedgerHealth::Down(format!(
                    "the database did not answer within {} ms",
                    inner.settings.call_budget.as_millis()
                ))),
            }
        }
        let ready = matches!(*inner.health.read(), LedgerHealth::Ready);
        let wait = if ready {
            inner.settings.poll
        } else {
            inner.settings.poll.min(DOWN_RETRY)
        };
        if !pause(wait, &mut stop).await {
            return;
        }
    }
}

/// One try at the migrations, on a connection of its own (a session
/// advisory lock must never go back into the pool).
async fn migrate_once(inner: &Inner) -> Result<Flavor, String> {
    let connect = inner.settings.pg.connect(NoTls);
    let (client, connection) =
        match tokio::time::timeout(inner.settings.connect_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot connect to the ledger database: {}",
                    describe(&e)
                ))
            }
            Err(_) => return Err("connecting to the ledger database timed out".into()),
        };
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection closed");
        }
    });
    let outcome = async {
        let flavor = Flavor::detect(&client)
            .await
            .map_err(|e| format!("cannot read the database version: {}", describe(&e)))?;
        schema::migrate(&client, &flavor)
            .await
            .map_err(|e| e.to_string())?;
        Ok(flavor)
    }
    .await;
    drop(client);
    let _ = driver.await;
    outcome
}

/// Sends this replica's changed counts to the others, a few milliseconds'
/// worth at a time, each key once with its newest version.
pub(crate) async fn announce(
    inner: Arc<Inner>,
    mut rx: mpsc::Receiver<Count>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    loop {
        let stopping = tokio::select! {
            n = rx.recv_many(&mut buf, 4096) => {
                if n == 0 {
                    return;
                }
                false
            }
            _ = stop.changed() => true,
        };
        if !stopping {
            tokio::time::sleep(ANNOUNCE_GATHER).await;
        }
        while let Ok(c) = rx.try_recv() {
            buf.push(c);
        }
        if !buf.is_empty() {
            send(&inner, std::mem::take(&mut buf)).await;
        }
        if stopping || *stop.borrow() {
            return;
        }
    }
}

async fn send(inner: &Inner, counts: Vec<Count>) {
    let mut newest: HashMap<(String, String), Count> = HashMap::with_capacity(counts.len());
    for c in counts {
        let k = (c.supplier_id.clone(), c.sku.clone());
        match newest.get(&k) {
            Some(old) if old.version >= c.version => {}
            _ => {
                newest.insert(k, c);
            }
        }
    }
    let counts: Vec<Count> = newest.into_values().collect();
    let conn = match inner.pool.get().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "holds not announced; other replicas catch up by polling");
            return;
        }
    };
    for payload in holds_cache::payloads(&counts) {
        if let Err(e) = conn.execute(sql::NOTIFY, &[&payload]).await {
            tracing::debug!(error = %describe(&e), "holds not announced; other replicas catch up by polling");
            return;
        }
    }
}

/// Hears other replicas' changed counts on a connection of its own, and
/// after every (re)connection reads everything once, for what was missed.
pub(crate) async fn listen(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut backoff = DOWN_RETRY;
    loop {
        while !inner.schema_ready.load(Ordering::Acquire) {
            if !pause(DOWN_RETRY, &mut stop).await {
                return;
            }
        }
        if inner.flavor.get().is_some_and(|f| f.cockroach) {
            tracing::info!("the ledger database has no LISTEN/NOTIFY: holds of other replicas arrive by polling");
            return;
        }
        let connect = inner.settings.pg.connect(NoTls);
        let (client, mut connection) =
            match tokio::time::timeout(inner.settings.connect_timeout, connect).await {
                Ok(Ok(c)) => c,
                _ => {
                    if !pause(backoff, &mut stop).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
        let (tx, mut notes) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "holds listener connection closed");
                        return;
                    }
                }
            }
        });
        match client
            .batch_execute(&format!("LISTEN {}", sql::HOLDS_CHANNEL))
            .await
        {
            Ok(()) => backoff = DOWN_RETRY,
            Err(e) if e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) => {
                tracing::info!(error = %describe(&e), "no LISTEN in this database: holds of other replicas arrive by polling");
                driver.abort();
                return;
            }
            Err(e) => {
                tracing::debug!(error = %describe(&e), "LISTEN failed; trying again");
                driver.abort();
                if !pause(backoff, &mut stop).await {
                    return;
                }
                continue;
            }
        }
        if let Err(Fail::Down(why)) = ops::refresh(&inner).await {
            tracing::debug!(reason = %why, "holds refresh after LISTEN failed");
        }
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some(n) => {
                        if let Some(counts) = holds_cache::parse_payload(n.payload()) {
                            for c in &counts {
                                inner.cache.apply(c);
                            }
                        }
                    }
                    None => break,
                },
                _ = stop.changed() => {
                    driver.abort();
                    return;
                }
            }
        }
        drop(client);
        driver.abort();
        if !pause(backoff, &mut stop).await {
            return;
        }
    }
}

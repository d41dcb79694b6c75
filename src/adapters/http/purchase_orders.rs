//! The purchase-order sender: takes due orders from the ledger's outbox,
//! posts each to its supplier (`POST {base}/v1/purchase-orders`, CONTRACT
//! §4) and records the outcome, retrying with exponential backoff until the
//! supplier acknowledges.
//!
//! Sends are idempotent by `po_number`, so a send repeated after a crash or a
//! lost answer is harmless; the ledger leases an order to one sender for a
//! while so that two senders (two replicas on one shared ledger) rarely post
//! it at once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use super::suppliers::wire::{
    PurchaseOrderLine, PurchaseOrderRequest, WireAddress, PURCHASE_ORDERS_PATH,
};
use crate::domain::ledger::{Delivery, DeliveryOutcome, Ledger, OutboundOrder};
use crate::domain::world::World;

/// `[purchase_orders]`: how orders are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PurchaseOrdersConfig {
    /// Send purchase orders at all (off: they stay queued, e.g. for a
    /// replica that must not talk to suppliers).
    pub enabled: bool,
    /// Timeout of one send, answer included.
    pub timeout_ms: u64,
    /// First retry delay; doubles per failed attempt.
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Orders sent at once.
    pub concurrency: usize,
    /// How often the outbox is looked at when it had nothing due.
    pub poll_interval_ms: u64,
}

impl Default for PurchaseOrdersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_ms: 10_000,
            retry_initial_ms: 1_000,
            retry_max_ms: 300_000,
            concurrency: 8,
            poll_interval_ms: 250,
        }
    }
}

/// Turns a supplier's configured base URL into one to post to; `None`
/// when it names nothing reachable (the demo world's `fake:` URLs resolve
/// only while its fake suppliers run).
pub type BaseResolver = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Sends the outbox's purchase orders.
pub struct OrderSender {
    ledger: Arc<dyn Ledger>,
    world: Arc<World>,
    client: reqwest::Client,
    config: PurchaseOrdersConfig,
    resolve: BaseResolver,
}

impl std::fmt::Debug for OrderSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderSender")
            .field("config", &self.config)
            .finish()
    }
}

/// How one send went, before it becomes a ledger outcome.
enum Sent {
    Acknowledged,
    /// Worth retrying soon (timeouts, 5xx, 429, connection trouble).
    Transient(String),
    /// The supplier refuses the order as sent, or it cannot be sent at all;
    /// retried, but only at the longest interval.
    Refused(String),
}

impl OrderSender {
    /// A sender; `resolve` maps configured base URLs to reachable ones.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        world: Arc<World>,
        config: PurchaseOrdersConfig,
        resolve: BaseResolver,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .user_agent(concat!("stockroute/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            ledger,
            world,
            client,
            config,
            resolve,
        })
    }

    /// Sends due orders until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        // An order is leased for longer than one send can take, so that it
        // is not picked up again while its send is still running.
        let lease_ms = (self.config.timeout_ms as i64).saturating_mul(2) + 1_000;
        let batch = self.config.concurrency.max(1) * 4;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let due = match self.ledger.due_orders(batch, lease_ms).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "purchase-order outbox unavailable");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            futures::stream::iter(due)
                .for_each_concurrent(self.config.concurrency.max(1), |o| self.deliver(o))
                .await;
        }
    }

    /// Sends one order and records the outcome.
    async fn deliver(&self, o: OutboundOrder) {
        let attempts = match o.order.delivery {
            Delivery::Pending { attempts, .. } => attempts,
            _ => return,
        };
        let outcome = match self.send(&o).await {
            Sent::Acknowledged => {
                metrics::counter!("stockroute_purchase_orders_total", "outcome" => "acknowledged")
                    .increment(1);
                tracing::info!(po_number = %o.order.po_number, supplier = %o.order.supplier_id, attempts = attempts + 1, "purchase order acknowledged");
                DeliveryOutcome::Acknowledged
            }
            Sent::Transient(error) => {
                metrics::counter!("stockroute_purchase_orders_total", "outcome" => "retry")
                    .increment(1);
                let delay = backoff_ms(&self.config, attempts, &o.order.po_number);
                tracing::warn!(po_number = %o.order.po_number, supplier = %o.order.supplier_id, %error, retry_in_ms = delay, "purchase order not acknowledged");
                DeliveryOutcome::Failed {
                    error,
                    retry_at_ms: self.world.clock.now_ms().saturating_add(delay as i64),
                }
            }
            Sent::Refused(error) => {
                metrics::counter!("stockroute_purchase_orders_total", "outcome" => "refused")
                    .increment(1);
                tracing::error!(po_number = %o.order.po_number, supplier = %o.order.supplier_id, %error, "purchase order refused; retrying at the longest interval");
                DeliveryOutcome::Failed {
                    error,
                    retry_at_ms: self
                        .world
                        .clock
                        .now_ms()
                        .saturating_add(self.config.retry_max_ms as i64),
                }
            }
        };
        if let Err(e) = self
            .ledger
            .record_delivery(&o.order.po_number, outcome)
            .await
        {
            // The lease runs out and the order is sent again: harmless.
            tracing::warn!(po_number = %o.order.po_number, error = %e, "purchase order outcome not recorded");
        }
    }

    async fn send(&self, o: &OutboundOrder) -> Sent {
        let supplier = &o.order.supplier_id;
        let configured = self
            .world
            .suppliers
            .id_of(supplier)
            .and_then(|id| self.world.suppliers.get(id))
            .and_then(|s| {
                s.orders
                    .as_ref()
                    .map(|e| e.base_url.clone())
                    .or_else(|| s.realtime.as_ref().map(|r| r.base_url.clone()))
            });
        let Some(configured) = configured else {
            return Sent::Refused(format!(
                "supplier {supplier} has no order endpoint configured (orders.base_url)"
            ));
        };
        let Some(base) = (self.resolve)(&configured) else {
            return Sent::Refused(format!(
                "supplier {supplier}'s order endpoint `{configured}` is not reachable"
            ));
        };
        let body = PurchaseOrderRequest {
            po_number: o.order.po_number.clone(),
            order_ref: o.order_ref.clone(),
            currency: self.world.currency.clone(),
            lines: o
                .order
                .lines
                .iter()
                .map(|l| PurchaseOrderLine {
                    supplier_sku: l.supplier_sku.clone(),
                    quantity: l.qty,
                    unit_cost: l.unit_cost.to_string(),
                })
                .collect(),
            ship_to: Some(WireAddress {
                country_code: o.ship_to.country_code.clone(),
                postal_code: o.ship_to.postal_code.clone(),
                residential: o.ship_to.residential,
            }),
        };
        let url = format!("{}{PURCHASE_ORDERS_PATH}", base.trim_end_matches('/'));
        match self.client.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => Sent::Acknowledged,
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let detail = crate::limits::truncate_for_message(text.trim());
                let why = format!("POST {url}: HTTP {status} {detail}");
                if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    Sent::Transient(why)
                } else {
                    Sent::Refused(why)
                }
            }
            Err(e) => Sent::Transient(format!("POST {url}: {e}")),
        }
    }
}

/// Delay before attempt `attempts + 1`: doubling from the initial delay up
/// to the longest, with ±20% jitter (fixed per order and attempt, so tests
/// can reason about it) so that many orders failing together do not retry
/// together.
pub fn backoff_ms(config: &PurchaseOrdersConfig, attempts: u32, po_number: &str) -> u64 {
    let base = config
        .retry_initial_ms
        .max(1)
        .saturating_mul(1u64 << attempts.min(30))
        .min(config.retry_max_ms.max(1));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in po_number.bytes().chain(attempts.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let jitter_pct = (h % 41) as i64 - 20;
    let jittered = base as i64 + base as i64 * jitter_pct / 100;
    (jittered.max(1) as u64).min(config.retry_max_ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let c = PurchaseOrdersConfig {
            retry_initial_ms: 1_000,
            retry_max_ms: 60_000,
            ..PurchaseOrdersConfig::default()
        };
        for attempts in 0..40 {
            let d = backoff_ms(&c, attempts, "PO-1");
            let base = (1_000u64 << attempts.min(30)).min(60_000);
            assert!(
                d >= base * 8 / 10 && d <= (base * 12 / 10).min(60_000),
                "{attempts}: {d}"
            );
        }
        assert_ne!(backoff_ms(&c, 3, "PO-1"), backoff_ms(&c, 3, "PO-2"));
    }
}

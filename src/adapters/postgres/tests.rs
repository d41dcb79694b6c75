//! The conformance test every ledger passes (`domain::ledger::model`), here
//! against a throwaway PostgreSQL cluster: random rounds of concurrent
//! reserves, allocations, commits, releases, sweeps and feed refreshes,
//! checked against the sequential model, a fresh database per case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{PgLedger, PgSettings, Supply, SupplySource};
use crate::config::{LedgerConfig, LedgerKind};
use crate::domain::catalog::ProductId;
use crate::domain::ledger::model::{self, strategies, TimeControl, Universe};
use crate::domain::ledger::{KeyResolver, Ledger};
use crate::domain::suppliers::SupplierId;

#[path = "../../../tests/it/pg.rs"]
mod cluster;

/// Supplier `S{n}` and product `P{n}` are dense id n, as the model names them.
struct Grid;

impl KeyResolver for Grid {
    fn product(&self, sku: &str) -> Option<ProductId> {
        sku.strip_prefix('P')?.parse().ok()
    }
    fn supplier(&self, supplier_id: &str) -> Option<SupplierId> {
        supplier_id.strip_prefix('S')?.parse().ok()
    }
}

/// The model's supply never changes; a full feed says the same again.
struct GridSupply(Universe);

impl SupplySource for GridSupply {
    fn supply(&self, supplier_id: &str, sku: &str) -> Option<Supply> {
        let key = Grid.key(supplier_id, sku)?;
        let index = key.supplier as usize * self.0.products as usize + key.product as usize;
        Some(Supply {
            qty: *self.0.supply.get(index)?,
            as_of_ms: 0,
        })
    }
}

/// The ledger's frozen clock, moved by the checker.
struct PgTime<'a>(&'a PgLedger);

impl TimeControl for PgTime<'_> {
    fn now_ms(&self) -> i64 {
        self.0.frozen_clock_ms().unwrap_or_default()
    }
    fn advance_ms(&self, ms: i64) {
        self.0.advance_clock_ms(ms);
    }
}

#[test]
fn matches_the_model_on_postgres() {
    let pg = cluster::PgCluster::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let databases = AtomicUsize::new(0);
    let strategy = strategies::universe().prop_flat_map(|u| {
        let cells = u.supply.len();
        (Just(u), strategies::rounds(cells, 3))
    });
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let outcome = runner.run(&strategy, |(universe, rounds)| {
        let db = format!("model_{}", databases.fetch_add(1, Ordering::Relaxed));
        pg.create_database(&db);
        let config = LedgerConfig {
            kind: LedgerKind::Postgres,
            postgres_url: pg.url_for(&db),
            postgres_pool_size: 4,
            postgres_call_budget_ms: 30_000,
            ..LedgerConfig::default()
        };
        let checked = rt.block_on(async {
            let ledger = PgLedger::start(
                PgSettings::from_config(&config).unwrap(),
                Arc::new(Grid),
                Arc::new(GridSupply(universe.clone())),
            )
            .unwrap();
            ledger.wait_ready(Duration::from_secs(60)).await.unwrap();
            ledger.freeze_clock_ms(1_700_000_000_000);
            let checked = model::check(&ledger, &PgTime(&ledger), &universe, &rounds).await;
            ledger.flush().await.unwrap();
            checked
        });
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}\n{}", pg.log_text());
    }
}

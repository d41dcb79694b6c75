//! The ledger's tables and the migrations that create them, applied on
//! start under a lock so that replicas starting together take turns.
//!
//! Migrations are numbered and recorded in `schema_migrations`; each is a
//! list of idempotent statements (`IF NOT EXISTS`), so one that ran without
//! being recorded (a crash, or a database whose DDL is not transactional)
//! simply runs again. The lock is a session advisory lock on PostgreSQL and
//! YugabyteDB; CockroachDB's advisory-lock functions are accepted but do not
//! lock, so there (and wherever the functions are missing) a lease row in
//! `schema_migrations_lock` takes its place.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// One schema change.
#[derive(Debug)]
pub struct Migration {
    /// Applied in ascending order; recorded in `schema_migrations`.
    pub version: i64,
    /// What it does, for the record.
    pub name: &'static str,
    /// Statements, each safe to run twice.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first. Never edit one that has shipped: add a new one.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "stock, reservations, lines, idempotency keys, purchase-order outbox",
    statements: &[
        // One row per (supplier, product) ever reserved. `supply` is the newest
        // supplier figure seen (feed or real-time, by `supply_as_of_ms`);
        // `held` and `allocated` are what live holds and unreflected
        // allocations count against it. `excess` is only ever non-zero when a
        // newer, smaller supply arrived below what was already counted: it
        // is exactly `max(0, held + allocated - supply)`, so a client that
        // raises `held` without the conditional check breaks
        // `stock_never_oversold` and is refused by the database itself.
        "CREATE TABLE IF NOT EXISTS stock (
            supplier_id     TEXT NOT NULL,
            sku             TEXT NOT NULL,
            supply          INT8 NOT NULL,
            supply_as_of_ms INT8 NOT NULL,
            held            INT8 NOT NULL DEFAULT 0,
            allocated       INT8 NOT NULL DEFAULT 0,
            excess          INT8 NOT NULL DEFAULT 0,
            version         INT8 NOT NULL DEFAULT 1,
            PRIMARY KEY (supplier_id, sku),
            CONSTRAINT stock_supply_not_negative CHECK (supply >= 0),
            CONSTRAINT stock_held_not_negative CHECK (held >= 0),
            CONSTRAINT stock_allocated_not_negative CHECK (allocated >= 0),
            CONSTRAINT stock_excess_not_negative CHECK (excess >= 0),
            CONSTRAINT stock_never_oversold CHECK (held + allocated <= supply + excess)
        )",
        "CREATE TABLE IF NOT EXISTS reservation (
            id               TEXT PRIMARY KEY,
            owner            TEXT,
            state            TEXT NOT NULL,
            plan             BYTEA NOT NULL,
            ship_country     TEXT NOT NULL,
            ship_postal      TEXT NOT NULL,
            ship_residential BOOL NOT NULL,
            created_at_ms    INT8 NOT NULL,
            expires_at_ms    INT8 NOT NULL,
            order_ref        TEXT,
            committed_at_ms  INT8,
            release_reason   TEXT,
            ended_at_ms      INT8,
            CONSTRAINT reservation_state_known
                CHECK (state IN ('held', 'committed', 'released', 'expired')),
            CONSTRAINT reservation_committed_has_order
                CHECK (state <> 'committed' OR (order_ref IS NOT NULL AND committed_at_ms IS NOT NULL))
        )",
        "CREATE INDEX IF NOT EXISTS reservation_held_expiry
            ON reservation (expires_at_ms) WHERE state = 'held'",
        // `counts` says what the line adds to its stock row right now, so that
        // every counter change is the sum of the lines that moved.
        "CREATE TABLE IF NOT EXISTS reservation_line (
            reservation_id  TEXT NOT NULL REFERENCES reservation (id),
            line_no         INT4 NOT NULL,
            supplier_id     TEXT NOT NULL,
            sku             TEXT NOT NULL,
            supplier_sku    TEXT NOT NULL,
            qty             INT8 NOT NULL,
            unit_cost       NUMERIC NOT NULL,
            counts          TEXT NOT NULL,
            allocated_at_ms INT8,
            PRIMARY KEY (reservation_id, line_no),
            CONSTRAINT reservation_line_qty_not_negative CHECK (qty >= 0),
            CONSTRAINT reservation_line_counts_known CHECK (counts IN ('held', 'allocated', 'none')),
            CONSTRAINT reservation_line_allocated_has_time
                CHECK (counts <> 'allocated' OR allocated_at_ms IS NOT NULL)
        )",
        "CREATE INDEX IF NOT EXISTS reservation_line_allocated
            ON reservation_line (supplier_id, allocated_at_ms) WHERE counts = 'allocated'",
        // Keys are scoped by owner: '' when the call had none, '=' || owner otherwise.
        "CREATE TABLE IF NOT EXISTS idempotency (
            scope          TEXT NOT NULL,
            idem_key       TEXT NOT NULL,
            fingerprint    BYTEA NOT NULL,
            reservation_id TEXT NOT NULL,
            created_at_ms  INT8 NOT NULL,
            PRIMARY KEY (scope, idem_key)
        )",
        "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at_ms)",
        "CREATE TABLE IF NOT EXISTS purchase_order (
            po_number          TEXT PRIMARY KEY,
            reservation_id     TEXT NOT NULL REFERENCES reservation (id),
            supplier_id        TEXT NOT NULL,
            idx                INT4 NOT NULL,
            status             TEXT NOT NULL,
            attempts           INT8 NOT NULL DEFAULT 0,
            last_error         TEXT,
            next_attempt_at_ms INT8 NOT NULL,
            acknowledged_at_ms INT8,
            lease_until_ms     INT8,
            CONSTRAINT purchase_order_status_known
                CHECK (status IN ('pending', 'acknowledged', 'cancelled')),
            CONSTRAINT purchase_order_place_unique UNIQUE (reservation_id, idx)
        )",
        "CREATE INDEX IF NOT EXISTS purchase_order_due
            ON purchase_order (next_attempt_at_ms) WHERE status = 'pending'",
    ],
}];

/// Advisory lock key of the migrations: "stockrte" in ASCII.
const LOCK_KEY: i64 = 0x73_74_6f_63_6b_72_74_65;
/// How long a lease-row lock lasts if its holder dies before releasing it.
const LEASE_MS: i64 = 60_000;
/// How long to wait for another replica's migrations.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Why migrations could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database refused or failed a statement.
    #[error("migration {step}: {source}")]
    Db {
        /// What was being done.
        step: String,
        /// The database's error.
        source: tokio_postgres::Error,
    },
    /// Another replica held the migration lock for too long.
    #[error("another replica held the migration lock for more than {0:?}")]
    LockTimeout(Duration),
}

fn db(step: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    let step = step.into();
    move |source| MigrateError::Db { step, source }
}

/// How mutual exclusion between replicas is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `pg_advisory_lock`, released with the session.
    Advisory,
    /// A row in `schema_migrations_lock` with an expiry.
    Lease,
}

/// Which database answers: decides the lock and whether LISTEN/NOTIFY exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    /// `SELECT version()`.
    pub version: String,
    /// CockroachDB: no real advisory locks, no LISTEN/NOTIFY.
    pub cockroach: bool,
}

impl Flavor {
    /// Asks the database what it is.
    pub async fn detect(client: &Client) -> Result<Flavor, tokio_postgres::Error> {
        let row = client.query_one("SELECT version()", &[]).await?;
        let version: String = row.get(0);
        let cockroach = version.contains("CockroachDB");
        Ok(Flavor { version, cockroach })
    }
}

/// Applies every migration the database lacks; returns the versions applied
/// by this call (empty when another replica got there first).
pub async fn migrate(client: &Client, flavor: &Flavor) -> Result<Vec<i64>, MigrateError> {
    let (kind, holder) = acquire(client, flavor).await?;
    let applied = apply_pending(client).await;
    // A failed release only delays the next start: the advisory lock goes
    // with the session, the lease with its expiry.
    if let Err(e) = release(client, kind, &holder).await {
        tracing::warn!(error = %e, "migration lock not released");
    }
    applied
}

async fn acquire(client: &Client, flavor: &Flavor) -> Result<(LockKind, String), MigrateError> {
    let holder = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    if !flavor.cockroach {
        match client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
        {
            Ok(_) => return Ok((LockKind::Advisory, holder)),
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_FUNCTION)
                    || e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) =>
            {
                tracing::info!("no advisory locks in this database: migrating under a lease row");
            }
            Err(e) => return Err(db("taking the advisory lock")(e)),
        }
    }
    create_lease_table(client).await?;
    let started = std::time::Instant::now();
    loop {
        let won = client
            .query(
                "INSERT INTO schema_migrations_lock (id, holder, until_ms)
                 VALUES (1, $1, (EXTRACT(EPOCH FROM now()) * 1000)::INT8 + $2)
                 ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
                 WHERE schema_migrations_lock.until_ms < (EXTRACT(EPOCH FROM now()) * 1000)::INT8
                 RETURNING holder",
                &[&holder, &LEASE_MS],
            )
            .await
            .map_err(db("taking the lease lock"))?;
        if !won.is_empty() {
            return Ok((LockKind::Lease, holder));
        }
        if started.elapsed() > LOCK_WAIT {
            return Err(MigrateError::LockTimeout(LOCK_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_lease_table(client: &Client) -> Result<(), MigrateError> {
    let create = "CREATE TABLE IF NOT EXISTS schema_migrations_lock (
        id INT8 PRIMARY KEY, holder TEXT NOT NULL, until_ms INT8 NOT NULL)";
    match client.batch_execute(create).await {
        Ok(()) => Ok(()),
        // Two replicas creating it at once: the loser sees the winner's catalog row.
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_TABLE) =>
        {
            client
                .batch_execute(create)
                .await
                .map_err(db("creating schema_migrations_lock"))
        }
        Err(e) => Err(db("creating schema_migrations_lock")(e)),
    }
}

async fn release(
    client: &Client,
    kind: LockKind,
    holder: &str,
) -> Result<(), tokio_postgres::Error> {
    match kind {
        LockKind::Advisory => client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await
            .map(drop),
        LockKind::Lease => client
            .execute(
                "DELETE FROM schema_migrations_lock WHERE id = 1 AND holder = $1",
                &[&holder],
            )
            .await
            .map(drop),
    }
}

async fn apply_pending(client: &Client) -> Result<Vec<i64>, MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INT8 PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INT8 NOT NULL)",
        )
        .await
        .map_err(db("creating schema_migrations"))?;
    let done: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(db("reading schema_migrations"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newest) = done.iter().max() {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if *newest > known {
            tracing::warn!(
                database = newest,
                binary = known,
                "the ledger schema is newer than this binary knows"
            );
        }
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let step = format!("{} ({})", m.version, m.name);
        client.batch_execute("BEGIN").await.map_err(db(&step))?;
        let mut outcome = Ok(());
        for statement in m.statements {
            outcome = client.batch_execute(statement).await;
            if outcome.is_err() {
                break;
            }
        }
        if outcome.is_ok() {
            outcome = client
                .execute(
                    "INSERT INTO schema_migrations (version, name, applied_at_ms)
                     VALUES ($1, $2, (EXTRACT(EPOCH FROM now()) * 1000)::INT8)",
                    &[&m.version, &m.name],
                )
                .await
                .map(drop);
        }
        match outcome {
            Ok(()) => client.batch_execute("COMMIT").await.map_err(db(&step))?,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(db(step)(e));
            }
        }
        tracing::info!(
            version = m.version,
            name = m.name,
            "ledger migration applied"
        );
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_idempotent_text() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "versions ascend");
            last = m.version;
            for s in m.statements {
                let head = s.trim_start();
                assert!(
                    head.starts_with("CREATE TABLE IF NOT EXISTS")
                        || head.starts_with("CREATE INDEX IF NOT EXISTS"),
                    "every statement must be safe to run twice: {head}"
                );
            }
        }
    }
}

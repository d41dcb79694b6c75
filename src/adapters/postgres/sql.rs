//! The ledger's statements. Plain SQL that PostgreSQL, CockroachDB and
//! YugabyteDB all accept: no functions or triggers of our own, no
//! `FOR UPDATE SKIP LOCKED`, conditional `UPDATE`s and `INSERT .. ON
//! CONFLICT` instead of read-then-write.
//!
//! Time is the database's: `now()` of the transaction, in Unix ms. Every
//! statement that reads the clock takes `$1`, which is NULL in service; a
//! test that drives time itself passes its simulated now there instead.

/// The ledger's clock in Unix ms: `$1` when a test sets it, else the
/// transaction's `now()`.
macro_rules! now_ms {
    () => {
        "COALESCE($1::INT8, (EXTRACT(EPOCH FROM now()) * 1000)::INT8)"
    };
}

/// Binds an idempotency key to a new reservation unless it is bound already.
/// Concurrent callers with one key wait here for the first to finish.
/// `$2` scope, `$3` key, `$4` fingerprint, `$5` reservation id.
pub const BIND_KEY: &str = concat!(
    "INSERT INTO idempotency (scope, idem_key, fingerprint, reservation_id, created_at_ms)
     VALUES ($2, $3, $4, $5, ",
    now_ms!(),
    ")
     ON CONFLICT (scope, idem_key) DO NOTHING
     RETURNING created_at_ms"
);

/// What a key is bound to. `$1` scope, `$2` key.
pub const KEY_BINDING: &str =
    "SELECT fingerprint, reservation_id FROM idempotency WHERE scope = $1 AND idem_key = $2";

/// Adds `held`/`allocated` to every key of a request, all in the given
/// (sorted) order so that concurrent requests lock rows in one order and
/// cannot deadlock. A row whose counts would pass the supply is left alone
/// and not returned: fewer rows than keys means "not enough stock". The
/// supply is the newest the database has seen; an older one in the request
/// only ever lowers the limit.
/// `$1..$6`: supplier ids, SKUs, supplies, supply as-of (ms), held, allocated.
pub const TAKE_STOCK: &str = "INSERT INTO stock AS s
        (supplier_id, sku, supply, supply_as_of_ms, held, allocated, excess, version)
     SELECT k.supplier_id, k.sku, k.supply, k.as_of, k.held, k.allocated, 0, 1
     FROM unnest($1::TEXT[], $2::TEXT[], $3::INT8[], $4::INT8[], $5::INT8[], $6::INT8[])
          WITH ORDINALITY AS k(supplier_id, sku, supply, as_of, held, allocated, ord)
     ORDER BY k.ord
     ON CONFLICT (supplier_id, sku) DO UPDATE SET
        supply = CASE WHEN EXCLUDED.supply_as_of_ms >= s.supply_as_of_ms
                      THEN EXCLUDED.supply ELSE s.supply END,
        supply_as_of_ms = GREATEST(s.supply_as_of_ms, EXCLUDED.supply_as_of_ms),
        held = s.held + EXCLUDED.held,
        allocated = s.allocated + EXCLUDED.allocated,
        excess = 0,
        version = s.version + 1
     WHERE s.held + s.allocated + EXCLUDED.held + EXCLUDED.allocated <=
        CASE WHEN EXCLUDED.supply_as_of_ms >= s.supply_as_of_ms
             THEN EXCLUDED.supply ELSE LEAST(s.supply, EXCLUDED.supply) END
     RETURNING s.supplier_id, s.sku, s.held + s.allocated, s.version";

/// The stored counts of some keys, to explain a refused reserve.
/// `$1` supplier ids, `$2` SKUs.
pub const STOCK_OF: &str =
    "SELECT s.supplier_id, s.sku, s.supply, s.supply_as_of_ms, s.held + s.allocated
     FROM stock s
     JOIN unnest($1::TEXT[], $2::TEXT[]) AS k(supplier_id, sku)
       ON s.supplier_id = k.supplier_id AND s.sku = k.sku";

/// Moves one key's counts by the given (signed) amounts, keeping `excess`
/// exact. Used one statement per key, pipelined in key order.
/// `$1` supplier id, `$2` SKU, `$3` change to held, `$4` change to allocated.
pub const MOVE_STOCK: &str = "UPDATE stock SET
        held = held + $3::INT8,
        allocated = allocated + $4::INT8,
        excess = GREATEST(0, held + $3::INT8 + allocated + $4::INT8 - supply),
        version = version + 1
     WHERE supplier_id = $1 AND sku = $2
     RETURNING held + allocated, version";

/// Like [`MOVE_STOCK`], and also takes a newer supply figure.
/// `$1` supplier id, `$2` SKU, `$3` change to allocated, `$4` supply,
/// `$5` its as-of (ms); the supply is taken only when not older than the stored one.
pub const REFRESH_STOCK: &str = "UPDATE stock SET
        allocated = allocated + $3::INT8,
        supply = CASE WHEN $5::INT8 >= supply_as_of_ms THEN $4::INT8 ELSE supply END,
        supply_as_of_ms = GREATEST(supply_as_of_ms, $5::INT8),
        excess = GREATEST(0, held + allocated + $3::INT8
            - CASE WHEN $5::INT8 >= supply_as_of_ms THEN $4::INT8 ELSE supply END),
        version = version + 1
     WHERE supplier_id = $1 AND sku = $2
     RETURNING held + allocated, version";

/// A new reservation. `$2` id, `$3` owner, `$4` state, `$5` plan,
/// `$6..$8` ship-to, `$9` hold ms, `$10` order_ref (allocate only).
pub const INSERT_RESERVATION: &str = concat!(
    "INSERT INTO reservation (id, owner, state, plan, ship_country, ship_postal,
        ship_residential, created_at_ms, expires_at_ms, order_ref, committed_at_ms)
     VALUES ($2, $3, $4, $5, $6, $7, $8, ",
    now_ms!(),
    ", ",
    now_ms!(),
    " + $9::INT8, $10::TEXT, CASE WHEN $4 = 'committed' THEN ",
    now_ms!(),
    " END)
     RETURNING created_at_ms, expires_at_ms, committed_at_ms"
);

/// A reservation's lines, numbered in plan order. `$2` reservation id,
/// `$3..$7` supplier ids, SKUs, supplier SKUs, quantities, unit costs;
/// `$8` what they count as ('held' or 'allocated').
pub const INSERT_LINES: &str = concat!(
    "INSERT INTO reservation_line (reservation_id, line_no, supplier_id, sku, supplier_sku,
        qty, unit_cost, counts, allocated_at_ms)
     SELECT $2::TEXT, (l.ord - 1)::INT4, l.supplier_id, l.sku, l.supplier_sku, l.qty, l.unit_cost, $8::TEXT,
        CASE WHEN $8::TEXT = 'allocated' THEN ",
    now_ms!(),
    " END
     FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::INT8[], $7::NUMERIC[])
          WITH ORDINALITY AS l(supplier_id, sku, supplier_sku, qty, unit_cost, ord)"
);

/// A reservation's purchase orders, due now. `$2` reservation id,
/// `$3` po numbers, `$4` supplier ids (in supplier id order).
pub const INSERT_ORDERS: &str = concat!(
    "INSERT INTO purchase_order (po_number, reservation_id, supplier_id, idx, status,
        attempts, next_attempt_at_ms)
     SELECT p.po_number, $2::TEXT, p.supplier_id, (p.ord - 1)::INT4, 'pending', 0, ",
    now_ms!(),
    "
     FROM unnest($3::TEXT[], $4::TEXT[]) WITH ORDINALITY AS p(po_number, supplier_id, ord)"
);

/// A reservation and the clock. `$2` id.
pub const GET_RESERVATION: &str = concat!(
    "SELECT id, owner, state, plan, ship_country, ship_postal, ship_residential,
        created_at_ms, expires_at_ms, order_ref, committed_at_ms, release_reason, ",
    now_ms!(),
    "
     FROM reservation WHERE id = $2"
);

/// A reservation's lines in plan order. `$1` id.
pub const GET_LINES: &str = "SELECT supplier_id, sku, supplier_sku, qty, unit_cost
     FROM reservation_line WHERE reservation_id = $1 ORDER BY line_no";

/// A reservation's purchase orders in supplier order. `$1` id.
pub const GET_ORDERS: &str = "SELECT po_number, supplier_id, status, attempts, last_error,
        next_attempt_at_ms, acknowledged_at_ms
     FROM purchase_order WHERE reservation_id = $1 ORDER BY idx";

/// HELD and live -> COMMITTED. `$2` id, `$3` order_ref, `$4` caller's owner.
pub const COMMIT: &str = concat!(
    "UPDATE reservation SET state = 'committed', order_ref = $3, committed_at_ms = ",
    now_ms!(),
    "
     WHERE id = $2 AND state = 'held' AND expires_at_ms > ",
    now_ms!(),
    "
       AND (owner IS NULL OR $4::TEXT IS NULL OR owner = $4::TEXT)
     RETURNING committed_at_ms"
);

/// A committed reservation's held lines become allocations. `$2` id.
pub const ALLOCATE_LINES: &str = concat!(
    "UPDATE reservation_line SET counts = 'allocated', allocated_at_ms = ",
    now_ms!(),
    "
     WHERE reservation_id = $2 AND counts = 'held'
     RETURNING supplier_id, sku, qty"
);

/// HELD and live, or COMMITTED when `$4` (cancel_allocation) -> RELEASED.
/// `$2` id, `$3` reason, `$5` caller's owner.
pub const RELEASE: &str = concat!(
    "UPDATE reservation SET state = 'released', release_reason = $3, ended_at_ms = ",
    now_ms!(),
    "
     WHERE id = $2
       AND ((state = 'held' AND expires_at_ms > ",
    now_ms!(),
    ") OR (state = 'committed' AND $4::BOOL))
       AND (owner IS NULL OR $5::TEXT IS NULL OR owner = $5::TEXT)
     RETURNING id"
);

/// Lines that stop counting, with what they counted as. `$1` ids.
pub const UNCOUNT_LINES: &str = "UPDATE reservation_line SET counts = 'none'
     WHERE reservation_id = ANY($1::TEXT[]) AND counts <> 'none'
     RETURNING supplier_id, sku, qty, allocated_at_ms IS NOT NULL";

/// Purchase orders of released allocations that were not acknowledged. `$1` id.
pub const CANCEL_ORDERS: &str =
    "UPDATE purchase_order SET status = 'cancelled', lease_until_ms = NULL
     WHERE reservation_id = $1 AND status = 'pending'";

/// Holds whose time ran out, oldest first. `$2` limit.
pub const DUE_HOLDS: &str = concat!(
    "SELECT id FROM reservation WHERE state = 'held' AND expires_at_ms <= ",
    now_ms!(),
    "
     ORDER BY expires_at_ms LIMIT $2"
);

/// Whether any hold is past its time (cheap: the partial index).
pub const ANY_DUE_HOLD: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM reservation WHERE state = 'held' AND expires_at_ms <= ",
    now_ms!(),
    ")"
);

/// HELD past its time -> EXPIRED; only those still so. `$2` ids.
pub const EXPIRE: &str = concat!(
    "UPDATE reservation SET state = 'expired', ended_at_ms = expires_at_ms
     WHERE id = ANY($2::TEXT[]) AND state = 'held' AND expires_at_ms <= ",
    now_ms!(),
    "
     RETURNING id"
);

/// Allocations of one supplier from before a full feed's as-of stop
/// counting. `$1` supplier id, `$2` as-of (ms).
pub const RETIRE_ALLOCATIONS: &str = "UPDATE reservation_line SET counts = 'none'
     WHERE supplier_id = $1 AND counts = 'allocated' AND allocated_at_ms < $2
     RETURNING sku, qty";

/// Every stock row of one supplier, to take a full feed's figures. `$1` supplier id.
pub const STOCK_OF_SUPPLIER: &str = "SELECT sku FROM stock WHERE supplier_id = $1";

/// Leases due purchase orders to this caller. A concurrent caller's UPDATE
/// waits on the same rows and then finds the lease taken, so no order goes
/// to two senders. `$2` limit, `$3` lease ms.
pub const LEASE_ORDERS: &str = concat!(
    "UPDATE purchase_order SET lease_until_ms = ",
    now_ms!(),
    " + $3::INT8
     WHERE po_number IN (
        SELECT po_number FROM purchase_order
        WHERE status = 'pending' AND next_attempt_at_ms <= ",
    now_ms!(),
    "
          AND (lease_until_ms IS NULL OR lease_until_ms <= ",
    now_ms!(),
    ")
        ORDER BY next_attempt_at_ms LIMIT $2)
       AND status = 'pending'
       AND (lease_until_ms IS NULL OR lease_until_ms <= ",
    now_ms!(),
    ")
     RETURNING po_number, reservation_id, supplier_id, attempts, last_error, next_attempt_at_ms"
);

/// The supplier acknowledged. `$2` po number.
pub const ACKNOWLEDGE: &str = concat!(
    "UPDATE purchase_order SET status = 'acknowledged', attempts = attempts + 1,
        acknowledged_at_ms = ",
    now_ms!(),
    ", lease_until_ms = NULL, last_error = NULL
     WHERE po_number = $2 AND status = 'pending'"
);

/// A send failed. `$1` po number, `$2` error, `$3` next attempt (ms).
pub const SEND_FAILED: &str = "UPDATE purchase_order SET attempts = attempts + 1, last_error = $2,
        next_attempt_at_ms = $3, lease_until_ms = NULL
     WHERE po_number = $1 AND status = 'pending'";

/// Idempotency keys past their lifetime, a batch at a time. `$2` lifetime ms, `$3` batch.
pub const PURGE_KEYS: &str = concat!(
    "DELETE FROM idempotency WHERE (scope, idem_key) IN (
        SELECT scope, idem_key FROM idempotency WHERE created_at_ms < ",
    now_ms!(),
    " - $2::INT8 LIMIT $3)"
);

/// Every key with something counted (the holds cache's full refresh).
pub const COUNTED: &str =
    "SELECT supplier_id, sku, held + allocated, version FROM stock WHERE held + allocated > 0";

/// The counts of given keys. `$1` supplier ids, `$2` SKUs.
pub const COUNTED_OF: &str = "SELECT s.supplier_id, s.sku, s.held + s.allocated, s.version
     FROM stock s
     JOIN unnest($1::TEXT[], $2::TEXT[]) AS k(supplier_id, sku)
       ON s.supplier_id = k.supplier_id AND s.sku = k.sku";

/// The channel other replicas listen on for changed counts.
pub const HOLDS_CHANNEL: &str = "stockroute_holds";

/// Announces changed counts. `$1` payload.
pub const NOTIFY: &str = "SELECT pg_notify('stockroute_holds', $1)";

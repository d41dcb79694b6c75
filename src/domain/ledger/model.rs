//! A sequential model of the ledger and a checker that runs any
//! [`Ledger`] against it: the conformance test every implementation passes.
//!
//! The checker plays rounds of operations. The operations of one round run
//! concurrently; their answers must then be explained by *some* sequential
//! order of the same operations applied to the model (a linearizability
//! check, exhaustive over orders, so rounds stay small). Between rounds time
//! may move and the checker compares every reservation's state with the
//! model and every (supplier, product) count with what the model says must
//! be counted: never more than the supply (availability never negative), and
//! exactly the live holds and unreflected allocations once expired holds are
//! swept (every unit accounted for).
//!
//! The stock is a small grid of suppliers `S0..` and products `P0..` with
//! dense ids equal to their numbers, so contention is high on purpose.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::{
    AllocateRequest, CommitRequest, HeldLine, IdempotencyKey, Ledger, LedgerError, ReleaseRequest,
    RequestFingerprint, Reservation, ReservationId, ReserveLine, ReserveRequest, State, StockKey,
};
use crate::domain::address::Address;
use crate::domain::clock::ManualClock;

/// Moves the ledger's clock; the model reads it too.
pub trait TimeControl: Send + Sync {
    /// The ledger's now (Unix ms).
    fn now_ms(&self) -> i64;
    /// Moves the ledger's clock forward.
    fn advance_ms(&self, ms: i64);
}

impl TimeControl for ManualClock {
    fn now_ms(&self) -> i64 {
        crate::domain::clock::Clock::now_ms(self)
    }
    fn advance_ms(&self, ms: i64) {
        ManualClock::advance_ms(self, ms);
    }
}

/// The stock the checker plays with.
#[derive(Debug, Clone)]
pub struct Universe {
    /// Suppliers `S0..S{n-1}`.
    pub suppliers: u16,
    /// Products `P0..P{n-1}`.
    pub products: u32,
    /// Supply per (supplier, product), index `supplier * products + product`.
    pub supply: Vec<u32>,
}

impl Universe {
    fn key(&self, index: usize) -> StockKey {
        let products = self.products.max(1) as usize;
        StockKey {
            supplier: (index / products) as u16,
            product: (index % products) as u32,
        }
    }

    fn index(&self, key: StockKey) -> usize {
        key.supplier as usize * self.products as usize + key.product as usize
    }

    fn cells(&self) -> usize {
        self.suppliers as usize * self.products as usize
    }
}

/// One operation. Reservations are named by their position among those
/// made so far (modulo their number), so any sequence is meaningful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Reserve these (cell, units) lines under key `k{key}`.
    Reserve {
        /// Idempotency key number (a small range makes replays and reuse).
        key: u8,
        /// (cell index, units).
        lines: Vec<(usize, u32)>,
        /// Hold time.
        hold_ms: i64,
    },
    /// Allocate these lines under key `k{key}` for order `O{order}`.
    Allocate {
        /// Idempotency key number.
        key: u8,
        /// (cell index, units).
        lines: Vec<(usize, u32)>,
        /// Order number.
        order: u8,
    },
    /// Commit reservation `which` to order `O{order}`.
    Commit {
        /// Which reservation.
        which: usize,
        /// Order number.
        order: u8,
    },
    /// Release reservation `which`.
    Release {
        /// Which reservation.
        which: usize,
        /// Also cancel an allocation.
        cancel: bool,
    },
    /// Sweep expired holds.
    Sweep,
    /// A full feed for supplier `S{supplier}` as of now.
    Refresh {
        /// Supplier number.
        supplier: u16,
    },
}

/// What an answer was, in terms the model can predict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A reservation in this state (reserve, allocate, commit, release).
    Ok(ReservationId, State),
    /// Sweep or refresh succeeded.
    Done,
    /// An error, by variant name.
    Err(&'static str),
}

fn variant(e: &LedgerError) -> &'static str {
    match e {
        LedgerError::NotFound { .. } => "NotFound",
        LedgerError::NotOwner { .. } => "NotOwner",
        LedgerError::Released { .. } => "Released",
        LedgerError::Expired { .. } => "Expired",
        LedgerError::Committed { .. } => "Committed",
        LedgerError::CommittedToOtherOrder { .. } => "CommittedToOtherOrder",
        LedgerError::KeyReused { .. } => "KeyReused",
        LedgerError::InsufficientStock(_) => "InsufficientStock",
        LedgerError::Invalid(_) => "Invalid",
        LedgerError::Unavailable(_) => "Unavailable",
    }
}

fn seen(r: &Result<Reservation, LedgerError>) -> Seen {
    match r {
        Ok(r) => Seen::Ok(r.id.clone(), r.state),
        Err(e) => Seen::Err(variant(e)),
    }
}

#[derive(Debug, Clone)]
struct MRes {
    state: State,
    lines: Vec<(usize, u32)>,
    expires_at_ms: i64,
    order: Option<u8>,
    committed_at_ms: i64,
}

/// The sequential model.
#[derive(Debug, Clone)]
pub struct Model {
    universe: Universe,
    res: HashMap<ReservationId, MRes>,
    /// In order of creation, for `which`.
    order: Vec<ReservationId>,
    keys: HashMap<u8, (RequestFingerprint, ReservationId)>,
    watermark: HashMap<u16, i64>,
}

fn fingerprint(kind: &str, lines: &[(usize, u32)], extra: i64) -> RequestFingerprint {
    let mut bytes = Vec::new();
    for (c, u) in lines {
        bytes.extend_from_slice(&(*c as u64).to_le_bytes());
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    RequestFingerprint::of(&[kind.as_bytes(), &bytes, &extra.to_le_bytes()])
}

impl Model {
    /// A model with nothing reserved.
    pub fn new(universe: Universe) -> Self {
        Self {
            universe,
            res: HashMap::new(),
            order: Vec::new(),
            keys: HashMap::new(),
            watermark: HashMap::new(),
        }
    }

    fn state_at(r: &MRes, now: i64) -> State {
        if r.state == State::Held && now >= r.expires_at_ms {
            State::Expired
        } else {
            r.state
        }
    }

    fn counts_allocation(&self, r: &MRes, cell: usize) -> bool {
        let supplier = self.universe.key(cell).supplier;
        self.watermark
            .get(&supplier)
            .is_none_or(|&wm| r.committed_at_ms >= wm)
    }

    /// Units that must be counted per cell: live holds and unreflected
    /// allocations; and those an unswept expired hold may still add.
    fn counted(&self, now: i64) -> (Vec<u32>, Vec<u32>) {
        let mut live = vec![0u32; self.universe.cells()];
        let mut stale = vec![0u32; self.universe.cells()];
        for r in self.res.values() {
            for &(cell, units) in &r.lines {
                match (r.state, Self::state_at(r, now)) {
                    (State::Held, State::Held) => live[cell] += units,
                    (State::Held, State::Expired) => stale[cell] += units,
                    (State::Committed, _) if self.counts_allocation(r, cell) => live[cell] += units,
                    _ => {}
                }
            }
        }
        (live, stale)
    }

    fn which(&self, which: usize) -> Option<ReservationId> {
        if self.order.is_empty() {
            return None;
        }
        Some(self.order[which % self.order.len()].clone())
    }

    /// Applies `op` as the ledger answered it, if the model allows that
    /// answer; returns false if it does not. `target` is the reservation a
    /// Commit or Release was sent to: chosen before the round, so that
    /// whatever order explains the round, the model judges the same id the
    /// ledger was asked about (a Reserve earlier in the order would shift
    /// `which` onto another reservation).
    fn apply(&mut self, op: &Op, target: Option<&ReservationId>, answer: &Seen, now: i64) -> bool {
        match op {
            Op::Reserve {
                key,
                lines,
                hold_ms,
            } => self.make(
                *key,
                lines,
                fingerprint("reserve", lines, *hold_ms),
                now.saturating_add(*hold_ms),
                None,
                answer,
                now,
            ),
            Op::Allocate { key, lines, order } => self.make(
                *key,
                lines,
                fingerprint("allocate", lines, i64::from(*order)),
                now,
                Some(*order),
                answer,
                now,
            ),
            Op::Commit { order, .. } => {
                let Some(id) = target.cloned() else {
                    return *answer == Seen::Err("NotFound");
                };
                let Some(r) = self.res.get_mut(&id) else {
                    return false;
                };
                let expected = match Self::state_at(r, now) {
                    State::Held => {
                        r.state = State::Committed;
                        r.order = Some(*order);
                        r.committed_at_ms = now;
                        Seen::Ok(id, State::Committed)
                    }
                    State::Committed if r.order == Some(*order) => Seen::Ok(id, State::Committed),
                    State::Committed => Seen::Err("CommittedToOtherOrder"),
                    State::Released => Seen::Err("Released"),
                    State::Expired => {
                        r.state = State::Expired;
                        Seen::Err("Expired")
                    }
                };
                expected == *answer
            }
            Op::Release { cancel, .. } => {
                let Some(id) = target.cloned() else {
                    return *answer == Seen::Err("NotFound");
                };
                let Some(r) = self.res.get_mut(&id) else {
                    return false;
                };
                let expected = match Self::state_at(r, now) {
                    State::Held => {
                        r.state = State::Released;
                        Seen::Ok(id, State::Released)
                    }
                    State::Committed if *cancel => {
                        r.state = State::Released;
                        Seen::Ok(id, State::Released)
                    }
                    State::Committed => Seen::Err("Committed"),
                    s @ (State::Released | State::Expired) => {
                        r.state = s;
                        Seen::Ok(id, s)
                    }
                };
                expected == *answer
            }
            Op::Sweep => {
                for r in self.res.values_mut() {
                    r.state = Self::state_at(r, now);
                }
                *answer == Seen::Done
            }
            Op::Refresh { supplier } => {
                let w = self.watermark.entry(*supplier).or_insert(i64::MIN);
                *w = (*w).max(now);
                *answer == Seen::Done
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &mut self,
        key: u8,
        lines: &[(usize, u32)],
        fp: RequestFingerprint,
        expires_at_ms: i64,
        order: Option<u8>,
        answer: &Seen,
        now: i64,
    ) -> bool {
        if let Some((bound_fp, id)) = self.keys.get(&key) {
            if *bound_fp != fp {
                return *answer == Seen::Err("KeyReused");
            }
            let state = self.res.get(id).map(|r| Self::state_at(r, now));
            return matches!(answer, Seen::Ok(a, s) if a == id && Some(*s) == state);
        }
        let (live, _) = self.counted(now);
        let mut want = vec![0u32; self.universe.cells()];
        for &(cell, units) in lines {
            want[cell] += units;
        }
        let fits =
            (0..want.len()).all(|c| want[c] == 0 || live[c] + want[c] <= self.universe.supply[c]);
        let Seen::Ok(id, state) = answer else {
            return !fits && *answer == Seen::Err("InsufficientStock");
        };
        let expected_state = if order.is_some() {
            State::Committed
        } else {
            State::Held
        };
        if !fits || *state != expected_state || self.res.contains_key(id) {
            return false;
        }
        self.res.insert(
            id.clone(),
            MRes {
                state: expected_state,
                lines: lines.to_vec(),
                expires_at_ms,
                order,
                committed_at_ms: now,
            },
        );
        self.order.push(id.clone());
        self.keys.insert(key, (fp, id.clone()));
        true
    }
}

fn held_lines(universe: &Universe, lines: &[(usize, u32)]) -> Vec<ReserveLine> {
    lines
        .iter()
        .map(|&(cell, units)| {
            let key = universe.key(cell);
            ReserveLine {
                line: HeldLine {
                    key,
                    supplier_id: format!("S{}", key.supplier),
                    sku: format!("P{}", key.product),
                    supplier_sku: format!("S{}-P{}", key.supplier, key.product),
                    qty: units,
                    unit_cost: Decimal::new(100 + cell as i64, 2),
                },
                supply: universe.supply[cell],
                supply_as_of_ms: 0,
            }
        })
        .collect()
}

fn reserve_request(
    universe: &Universe,
    key: u8,
    lines: &[(usize, u32)],
    fp: RequestFingerprint,
    hold_ms: i64,
) -> ReserveRequest {
    ReserveRequest {
        key: IdempotencyKey(format!("k{key}")),
        fingerprint: fp,
        lines: held_lines(universe, lines),
        hold_ms,
        plan: Vec::new(),
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        owner: None,
    }
}

/// Runs `op` against the ledger; `now` is the as_of of a refresh.
async fn run_op(
    ledger: &dyn Ledger,
    universe: &Universe,
    target: Option<&ReservationId>,
    op: &Op,
    now: i64,
) -> Seen {
    match op {
        Op::Reserve {
            key,
            lines,
            hold_ms,
        } => {
            let fp = fingerprint("reserve", lines, *hold_ms);
            seen(
                &ledger
                    .reserve(reserve_request(universe, *key, lines, fp, *hold_ms))
                    .await,
            )
        }
        Op::Allocate { key, lines, order } => {
            let fp = fingerprint("allocate", lines, i64::from(*order));
            seen(
                &ledger
                    .allocate(AllocateRequest {
                        reserve: reserve_request(universe, *key, lines, fp, 0),
                        order_ref: format!("O{order}"),
                    })
                    .await,
            )
        }
        Op::Commit { order, .. } => {
            let id = target
                .cloned()
                .unwrap_or_else(|| ReservationId::new("R-NONE"));
            seen(
                &ledger
                    .commit(CommitRequest {
                        id,
                        order_ref: format!("O{order}"),
                        owner: None,
                    })
                    .await,
            )
        }
        Op::Release { cancel, .. } => {
            let id = target
                .cloned()
                .unwrap_or_else(|| ReservationId::new("R-NONE"));
            seen(
                &ledger
                    .release(ReleaseRequest {
                        id,
                        reason: "model".into(),
                        cancel_allocation: *cancel,
                        owner: None,
                    })
                    .await,
            )
        }
        Op::Sweep => match ledger.expire_due().await {
            Ok(_) => Seen::Done,
            Err(e) => Seen::Err(variant(&e)),
        },
        Op::Refresh { supplier } => {
            match ledger
                .supply_refreshed(*supplier, &format!("S{supplier}"), now)
                .await
            {
                Ok(()) => Seen::Done,
                Err(e) => Seen::Err(variant(&e)),
            }
        }
    }
}

/// Finds an order of `ops` under which the model gives `answers`; returns
/// the model after it.
fn linearize(
    model: &Model,
    ops: &[Op],
    targets: &[Option<ReservationId>],
    answers: &[Seen],
    now: i64,
) -> Option<Model> {
    struct Attempt<'a> {
        ops: &'a [Op],
        targets: &'a [Option<ReservationId>],
        answers: &'a [Seen],
        now: i64,
    }
    fn go(model: &Model, left: &mut Vec<usize>, round: &Attempt<'_>) -> Option<Model> {
        if left.is_empty() {
            return Some(model.clone());
        }
        for i in 0..left.len() {
            let k = left.remove(i);
            let mut m = model.clone();
            if m.apply(
                &round.ops[k],
                round.targets[k].as_ref(),
                &round.answers[k],
                round.now,
            ) {
                if let Some(done) = go(&m, left, round) {
                    return Some(done);
                }
            }
            left.insert(i, k);
        }
        None
    }
    let round = Attempt {
        ops,
        targets,
        answers,
        now,
    };
    go(model, &mut (0..ops.len()).collect(), &round)
}

/// A round: operations run together, then time moves.
#[derive(Debug, Clone)]
pub struct Round {
    /// Run concurrently (keep to a handful: orders are tried exhaustively).
    pub ops: Vec<Op>,
    /// Then advance the clock by this much.
    pub advance_ms: i64,
}

/// Plays `rounds` against `ledger` (which must start empty and whose clock
/// `time` moves) and checks every answer and count against the model.
/// `Refresh` ops pass as_of = now. Returns what went wrong, if anything.
pub async fn check(
    ledger: &dyn Ledger,
    time: &dyn TimeControl,
    universe: &Universe,
    rounds: &[Round],
) -> Result<(), String> {
    let mut model = Model::new(universe.clone());
    for (n, round) in rounds.iter().enumerate() {
        let now = time.now_ms();
        let ops: Vec<Op> = round
            .ops
            .iter()
            .map(|op| match op {
                Op::Refresh { supplier } => Op::Refresh {
                    supplier: *supplier % universe.suppliers.max(1),
                },
                other => other.clone(),
            })
            .collect();
        // Commit and Release name their reservation from the list as it
        // stood before the round, as a client would.
        let targets: Vec<Option<ReservationId>> = ops
            .iter()
            .map(|op| match op {
                Op::Commit { which, .. } | Op::Release { which, .. } => model.which(*which),
                _ => None,
            })
            .collect();
        let answers: Vec<Seen> = futures::future::join_all(
            ops.iter()
                .zip(&targets)
                .map(|(op, target)| run_op(ledger, universe, target.as_ref(), op, now)),
        )
        .await;
        model = linearize(&model, &ops, &targets, &answers, now).ok_or_else(|| {
            format!("round {n}: no sequential order explains the answers\n ops: {ops:?}\n answers: {answers:?}")
        })?;
        verify(ledger, universe, &model, now, n, ops.contains(&Op::Sweep)).await?;
        time.advance_ms(round.advance_ms);
    }
    Ok(())
}

/// Compares the ledger with the model: every reservation's state, and the
/// counts per cell.
async fn verify(
    ledger: &dyn Ledger,
    universe: &Universe,
    model: &Model,
    now: i64,
    round: usize,
    swept: bool,
) -> Result<(), String> {
    for (id, r) in &model.res {
        let got = ledger
            .get(id, None)
            .await
            .map_err(|e| format!("round {round}: get {id}: {e}"))?;
        let want = Model::state_at(r, now);
        if got.state != want {
            return Err(format!(
                "round {round}: {id} is {:?}, model says {want:?}",
                got.state
            ));
        }
    }
    let holds = ledger.holds();
    let (live, stale) = model.counted(now);
    for cell in 0..universe.cells() {
        let key = universe.key(cell);
        debug_assert_eq!(universe.index(key), cell);
        let counted = holds.counted(key);
        if counted > universe.supply[cell] {
            return Err(format!(
                "round {round}: {key:?} counts {counted} units, more than its supply {}",
                universe.supply[cell]
            ));
        }
        let high = if swept {
            live[cell]
        } else {
            live[cell] + stale[cell]
        };
        if counted < live[cell] || counted > high {
            return Err(format!(
                "round {round}: {key:?} counts {counted} units; the model says {} live{}",
                live[cell],
                if swept {
                    String::new()
                } else {
                    format!(" and up to {} expired", stale[cell])
                }
            ));
        }
    }
    Ok(())
}

/// Proptest strategies for [`check`].
#[cfg(test)]
pub mod strategies {
    use proptest::prelude::*;

    use super::{Op, Round, Universe};

    /// A small grid with tight supply.
    pub fn universe() -> impl Strategy<Value = Universe> {
        (1u16..=2, 1u32..=3)
            .prop_flat_map(|(s, p)| {
                let cells = s as usize * p as usize;
                (Just(s), Just(p), proptest::collection::vec(0u32..=5, cells))
            })
            .prop_map(|(suppliers, products, supply)| Universe {
                suppliers,
                products,
                supply,
            })
    }

    fn lines(cells: usize) -> impl Strategy<Value = Vec<(usize, u32)>> {
        proptest::collection::vec((0..cells, 1u32..=3), 1..=3)
    }

    /// One operation on a grid of `cells`.
    pub fn op(cells: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..4, lines(cells), prop_oneof![Just(1_000i64), Just(5_000)])
                .prop_map(|(key, lines, hold_ms)| Op::Reserve { key, lines, hold_ms }),
            1 => (0u8..4, lines(cells), 0u8..2)
                .prop_map(|(key, lines, order)| Op::Allocate { key, lines, order }),
            3 => (0usize..16, 0u8..2).prop_map(|(which, order)| Op::Commit { which, order }),
            2 => (0usize..16, any::<bool>()).prop_map(|(which, cancel)| Op::Release { which, cancel }),
            1 => Just(Op::Sweep),
            1 => (0u16..2).prop_map(|supplier| Op::Refresh { supplier }),
        ]
    }

    /// Rounds of up to `width` concurrent operations.
    pub fn rounds(cells: usize, width: usize) -> impl Strategy<Value = Vec<Round>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(op(cells), 1..=width),
                prop_oneof![Just(0i64), Just(400), Just(1_500), Just(6_000)],
            )
                .prop_map(|(ops, advance_ms)| Round { ops, advance_ms }),
            1..24,
        )
    }
}

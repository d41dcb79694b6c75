use std::sync::Arc;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::address::Address;
use crate::domain::clock::ManualClock;
use crate::domain::ledger::model::{self, strategies};
use crate::domain::ledger::{HeldLine, ReserveLine, ReserveRequest};

const T0: i64 = 1_700_000_000_000;

/// Names `S{n}` and `P{n}` resolve to ids `n`, as the model's grid uses.
struct Grid;

impl KeyResolver for Grid {
    fn product(&self, sku: &str) -> Option<crate::domain::catalog::ProductId> {
        sku.strip_prefix('P')?.parse().ok()
    }
    fn supplier(&self, id: &str) -> Option<crate::domain::suppliers::SupplierId> {
        id.strip_prefix('S')?.parse().ok()
    }
}

fn key(supplier: u16, product: u32) -> StockKey {
    StockKey { supplier, product }
}

fn line(supplier: u16, product: u32, qty: u32, supply: u32) -> ReserveLine {
    ReserveLine {
        line: HeldLine {
            key: key(supplier, product),
            supplier_id: format!("S{supplier}"),
            sku: format!("P{product}"),
            supplier_sku: format!("X{product}"),
            qty,
            unit_cost: Decimal::new(1250, 2),
        },
        supply,
        supply_as_of_ms: T0,
    }
}

fn request(k: &str, lines: Vec<ReserveLine>) -> ReserveRequest {
    ReserveRequest {
        key: IdempotencyKey::parse(k).unwrap(),
        fingerprint: RequestFingerprint::of(&[k.as_bytes(), format!("{lines:?}").as_bytes()]),
        lines,
        hold_ms: 60_000,
        plan: b"plan".to_vec(),
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        owner: None,
    }
}

fn commit(id: &ReservationId, order: &str) -> CommitRequest {
    CommitRequest {
        id: id.clone(),
        order_ref: order.into(),
        owner: None,
    }
}

fn release(id: &ReservationId, cancel: bool) -> ReleaseRequest {
    ReleaseRequest {
        id: id.clone(),
        reason: "customer cancelled".into(),
        cancel_allocation: cancel,
        owner: None,
    }
}

fn durable(dir: &Path, clock: &Arc<ManualClock>) -> EmbeddedLedger {
    durable_with(dir, clock, 64 * 1024 * 1024)
}

fn durable_with(dir: &Path, clock: &Arc<ManualClock>, segment_bytes_max: u64) -> EmbeddedLedger {
    let options = EmbeddedOptions {
        dir: Some(dir.to_path_buf()),
        segment_bytes_max,
        ..EmbeddedOptions::default()
    };
    EmbeddedLedger::open(&options, Arc::clone(clock) as Arc<dyn Clock>, &Grid).unwrap()
}

/// The files in a ledger directory ending in `.{ext}`, in name order (so
/// segments and snapshots oldest first), with their sizes.
fn files(dir: &Path, ext: &str) -> Vec<(std::path::PathBuf, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    v.sort();
    v
}

/// Asserts that a ledger directory whose segments hold at most
/// `segment_bytes` is compact: one snapshot, and no more journal after it
/// than the snapshot itself plus two segments.
fn assert_compact(dir: &Path, segment_bytes: u64) {
    let sizes = |ext: &str| -> Vec<u64> { files(dir, ext).into_iter().map(|f| f.1).collect() };
    let (snapshots, segments) = (sizes("snap"), sizes("log"));
    assert_eq!(snapshots.len(), 1, "one snapshot: {snapshots:?}");
    assert!(
        segments.iter().sum::<u64>() <= snapshots[0] + 2 * segment_bytes,
        "journal after the snapshot {segments:?} exceeds the snapshot {snapshots:?} and two segments"
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Lifecycle abuse gets distinct answers: commit twice, commit elsewhere,
/// release after commit, commit after release, commit after expiry.
#[tokio::test]
async fn lifecycle_abuse_is_answered_distinctly() {
    let clock = ManualClock::new(T0);
    let l = EmbeddedLedger::in_memory(clock.clone());
    let r = l
        .reserve(request("a", vec![line(1, 1, 2, 5)]))
        .await
        .unwrap();
    assert_eq!(r.state, State::Held);
    let c1 = l.commit(commit(&r.id, "O-1")).await.unwrap();
    let c2 = l.commit(commit(&r.id, "O-1")).await.unwrap();
    assert_eq!(c1, c2, "commit twice answers the same");
    assert_eq!(c1.orders.len(), 1);
    assert!(matches!(
        l.commit(commit(&r.id, "O-2")).await,
        Err(LedgerError::CommittedToOtherOrder { .. })
    ));
    assert!(matches!(
        l.release(release(&r.id, false)).await,
        Err(LedgerError::Committed { .. })
    ));

    let r2 = l
        .reserve(request("b", vec![line(1, 1, 1, 5)]))
        .await
        .unwrap();
    let rel = l.release(release(&r2.id, false)).await.unwrap();
    assert_eq!(rel.state, State::Released);
    assert_eq!(rel.release_reason.as_deref(), Some("customer cancelled"));
    assert!(matches!(
        l.commit(commit(&r2.id, "O-3")).await,
        Err(LedgerError::Released { .. })
    ));
    assert_eq!(l.release(release(&r2.id, false)).await.unwrap(), rel);

    let r3 = l
        .reserve(request("c", vec![line(1, 1, 1, 5)]))
        .await
        .unwrap();
    clock.advance_ms(60_000);
    assert!(
        matches!(l.commit(commit(&r3.id, "O-4")).await, Err(LedgerError::Expired { expired_at_ms, .. }) if expired_at_ms == r3.expires_at_ms),
        "an expired hold never commits, swept or not"
    );
    assert_eq!(l.get(&r3.id, None).await.unwrap().state, State::Expired);

    assert!(matches!(
        l.get(&ReservationId::new("R-NOPE"), None).await,
        Err(LedgerError::NotFound { .. })
    ));
    // Only the committed 2 units remain counted.
    assert_eq!(l.holds_table().total(), 2);
}

/// A committed reservation released with cancel_allocation replenishes and
/// cancels its unsent purchase orders.
#[tokio::test]
async fn cancelling_an_allocation_replenishes_and_cancels_orders() {
    let clock = ManualClock::new(T0);
    let l = EmbeddedLedger::in_memory(clock.clone());
    let r = l
        .reserve(request("a", vec![line(1, 1, 2, 5), line(2, 1, 1, 5)]))
        .await
        .unwrap();
    let c = l.commit(commit(&r.id, "O-1")).await.unwrap();
    assert_eq!(c.orders.len(), 2);
    l.record_delivery(&c.orders[0].po_number, DeliveryOutcome::Acknowledged)
        .await
        .unwrap();
    let rel = l.release(release(&r.id, true)).await.unwrap();
    assert_eq!(rel.state, State::Released);
    assert!(matches!(
        rel.orders[0].delivery,
        Delivery::Acknowledged { attempts: 1, .. }
    ));
    assert_eq!(rel.orders[1].delivery, Delivery::Cancelled);
    assert_eq!(l.holds_table().total(), 0);
    assert!(l.due_orders(10, 1_000).await.unwrap().is_empty());
}

/// Owners only see their own reservations.
#[tokio::test]
async fn other_owners_are_refused() {
    let l = EmbeddedLedger::in_memory(ManualClock::new(T0));
    let mut req = request("a", vec![line(1, 1, 1, 5)]);
    req.owner = Some("shop-a".into());
    let r = l.reserve(req.clone()).await.unwrap();
    assert!(matches!(
        l.get(&r.id, Some("shop-b")).await,
        Err(LedgerError::NotOwner { .. })
    ));
    assert!(l.get(&r.id, Some("shop-a")).await.is_ok());
    // Keys are per owner: another owner's same key is a new reservation.
    req.owner = Some("shop-b".into());
    let other = l.reserve(req).await.unwrap();
    assert_ne!(other.id, r.id);
}

/// The same idempotency key 50 times at once executes once; every caller
/// gets that reservation. A different request under the key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_storm_executes_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let l = durable(dir.path(), &clock);
    let req = request("storm", vec![line(1, 1, 3, 1000)]);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (l, req) = (l.clone(), req.clone());
            tokio::spawn(async move { l.reserve(req).await })
        })
        .collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller sees the one reservation");
    assert_eq!(l.holds_table().total(), 3, "held once");
    let mut other = request("storm", vec![line(1, 1, 4, 1000)]);
    other.fingerprint = RequestFingerprint::of(&[b"different"]);
    assert!(matches!(
        l.reserve(other).await,
        Err(LedgerError::KeyReused { existing, .. }) if existing == ids[0]
    ));
    // Looking the key up answers the same, and does nothing.
    let found = l.find(None, &req.key, req.fingerprint).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(ids[0].clone()));
    assert!(matches!(
        l.find(None, &req.key, RequestFingerprint::of(&[b"different"]))
            .await,
        Err(LedgerError::KeyReused { .. })
    ));
    let unknown = IdempotencyKey::parse("never-used").unwrap();
    assert_eq!(l.find(None, &unknown, req.fingerprint).await.unwrap(), None);
    assert_eq!(
        l.find(Some("other"), &req.key, req.fingerprint)
            .await
            .unwrap(),
        None
    );
    // The key survives a restart.
    l.flush().await.unwrap();
    drop(l);
    let l = durable(dir.path(), &clock);
    assert_eq!(l.reserve(req).await.unwrap().id, ids[0]);
    assert_eq!(l.holds_table().total(), 3);
}

/// Thousands of concurrent reserves for 100 units: exactly 100 are held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversell_storm_holds_exactly_the_supply() {
    let l = EmbeddedLedger::in_memory(ManualClock::new(T0));
    let calls: Vec<_> = (0..2_000)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                l.reserve(request(&format!("k{i}"), vec![line(3, 7, 1, 100)]))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LedgerError::InsufficientStock(s)) => {
                assert_eq!((s[0].requested, s[0].available), (1, 0));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 100);
    assert_eq!(l.holds_table().counted(key(3, 7)), 100);
}

/// One SKU on two lines of a basket is checked as the sum of both.
#[tokio::test]
async fn one_sku_on_two_lines_never_holds_more_than_available() {
    let l = EmbeddedLedger::in_memory(ManualClock::new(T0));
    let err = l
        .reserve(request("a", vec![line(1, 1, 3, 5), line(1, 1, 3, 5)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not enough stock: P1 from supplier S1: 6 requested, 5 available"
    );
    assert_eq!(l.holds_table().total(), 0);
    l.reserve(request("b", vec![line(1, 1, 2, 5), line(1, 1, 3, 5)]))
        .await
        .unwrap();
    assert_eq!(l.holds_table().counted(key(1, 1)), 5);
}

/// Expiry is exact: a hold past its time frees its units for the next
/// reserve even if the sweeper has not run, and the sweeper frees the rest.
#[tokio::test]
async fn expiry_is_exact_without_the_sweeper() {
    let clock = ManualClock::new(T0);
    let l = EmbeddedLedger::in_memory(clock.clone());
    let a = l
        .reserve(request("a", vec![line(1, 1, 5, 5)]))
        .await
        .unwrap();
    assert!(l
        .reserve(request("b", vec![line(1, 1, 1, 5)]))
        .await
        .is_err());
    assert_eq!(l.next_expiry_ms(), Some(a.expires_at_ms));
    clock.advance_ms(60_000);
    l.reserve(request("c", vec![line(1, 1, 5, 5)]))
        .await
        .unwrap();
    assert_eq!(l.get(&a.id, None).await.unwrap().state, State::Expired);
    clock.advance_ms(60_000);
    assert_eq!(l.expire_due().await.unwrap(), 1);
    assert_eq!(l.holds_table().total(), 0);
}

/// A full feed with a later as_of retires the supplier's allocations made
/// before it; later ones and other suppliers' stay counted.
#[tokio::test]
async fn newer_full_feeds_retire_allocations() {
    let clock = ManualClock::new(T0);
    let l = EmbeddedLedger::in_memory(clock.clone());
    let a = l
        .reserve(request("a", vec![line(1, 1, 2, 9), line(2, 1, 1, 9)]))
        .await
        .unwrap();
    l.commit(commit(&a.id, "O-1")).await.unwrap();
    clock.advance_ms(10);
    let b = l
        .reserve(request("b", vec![line(1, 1, 4, 9)]))
        .await
        .unwrap();
    l.commit(commit(&b.id, "O-2")).await.unwrap();
    l.supply_refreshed(1, "S1", T0 + 5).await.unwrap();
    assert_eq!(l.holds_table().counted(key(1, 1)), 4);
    assert_eq!(l.holds_table().counted(key(2, 1)), 1);
    // An older feed changes nothing.
    l.supply_refreshed(1, "S1", T0).await.unwrap();
    assert_eq!(l.holds_table().counted(key(1, 1)), 4);
    l.supply_refreshed(1, "S1", T0 + 11).await.unwrap();
    assert_eq!(l.holds_table().counted(key(1, 1)), 0);
    // Cancelling a retired allocation frees nothing twice.
    l.release(release(&a.id, true)).await.unwrap();
    assert_eq!(l.holds_table().total(), 0);
}

/// Purchase orders are leased to one sender, retried when a send fails and
/// settled when acknowledged.
#[tokio::test]
async fn outbox_leases_retries_and_settles() {
    let clock = ManualClock::new(T0);
    let l = EmbeddedLedger::in_memory(clock.clone());
    let r = l
        .allocate(AllocateRequest {
            reserve: request("a", vec![line(1, 1, 2, 9), line(2, 1, 1, 9)]),
            order_ref: "O-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.state, State::Committed);
    let due = l.due_orders(10, 5_000).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].order_ref, "O-1");
    assert!(l.due_orders(10, 5_000).await.unwrap().is_empty(), "leased");
    l.record_delivery(&due[0].order.po_number, DeliveryOutcome::Acknowledged)
        .await
        .unwrap();
    l.record_delivery(
        &due[1].order.po_number,
        DeliveryOutcome::Failed {
            error: "503".into(),
            retry_at_ms: T0 + 1_000,
        },
    )
    .await
    .unwrap();
    clock.advance_ms(1_000);
    let again = l.due_orders(10, 5_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(matches!(
        &again[0].order.delivery,
        Delivery::Pending { attempts: 1, last_error: Some(e), .. } if e == "503"
    ));
    // A late duplicate outcome for a settled order is ignored.
    l.record_delivery(&due[0].order.po_number, DeliveryOutcome::Acknowledged)
        .await
        .unwrap();
    let now = l.get(&r.id, None).await.unwrap();
    assert!(matches!(
        now.orders[0].delivery,
        Delivery::Acknowledged { attempts: 1, .. }
    ));
}

/// Everything acknowledged survives a restart, torn tails are cut off, and
/// compaction keeps the directory small while losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_and_compaction_bounds_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let l = durable_with(dir.path(), &clock, 4 * 1024);
    let mut kept = Vec::new();
    for i in 0..200u32 {
        let r = l
            .reserve(request(&format!("k{i}"), vec![line(1, i % 7, 1, 1000)]))
            .await
            .unwrap();
        match i % 4 {
            0 => drop(l.release(release(&r.id, false)).await.unwrap()),
            1 => drop(l.commit(commit(&r.id, &format!("O-{i}"))).await.unwrap()),
            _ => {}
        }
        kept.push(l.get(&r.id, None).await.unwrap());
    }
    let counted = l.holds_table().entries();
    l.flush().await.unwrap();
    drop(l);
    // A crash mid-write leaves half a frame at the end of the newest segment.
    let newest = files(dir.path(), "log").pop().unwrap().0;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    std::io::Write::write_all(&mut f, &[200, 1, 0, 0, 9, 9]).unwrap();
    drop(f);

    let l = durable_with(dir.path(), &clock, 4 * 1024);
    for r in &kept {
        assert_eq!(&l.get(&r.id, None).await.unwrap(), r);
    }
    let mut again = l.holds_table().entries();
    let mut before = counted.clone();
    again.sort();
    before.sort();
    assert_eq!(again, before);
    l.flush().await.unwrap();
    drop(l);
    // Start-up queued the replayed segments for compaction; flush waited for
    // it. What a restart reads is bounded by the live state: no more
    // journal after the snapshot than the snapshot itself, plus the segment
    // that was open.
    assert_compact(dir.path(), 4 * 1024);
    let l = durable_with(dir.path(), &clock, 4 * 1024);
    for r in &kept {
        assert_eq!(&l.get(&r.id, None).await.unwrap(), r);
    }
}

/// A ledger dropped without `flush` still waits for the compaction it
/// queued: when the drop returns the directory is compact, and no snapshot
/// is written into it after its lock is released (a test's temporary
/// directory used to be left behind, holding one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_dropped_without_flush_finishes_its_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    // Enough held lines that folding them takes a while.
    let l = durable_with(dir.path(), &clock, 64 * 1024);
    for i in 0..300u32 {
        let lines = (0..40).map(|j| line(1, i * 40 + j, 1, 1000)).collect();
        l.reserve(request(&format!("k{i}"), lines)).await.unwrap();
    }
    // Closed segments were queued for compaction as the journal grew.
    drop(l);
    assert_compact(dir.path(), 64 * 1024);
    assert!(
        files(dir.path(), "tmp").is_empty(),
        "a compaction was cut short"
    );
}

/// Closed segments are folded only once they hold as many bytes as the
/// snapshot: folding rewrites every kept reservation, so folding at every
/// segment would write the whole state again per segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_waits_for_as_much_journal_as_snapshot() {
    const SEGMENT: u64 = 4 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = |ext: &str| files(dir.path(), ext);
    let mut n = 0u32;
    let mut run = |count: u32| {
        let start = n;
        n += count;
        let (dir, clock) = (dir.path().to_path_buf(), Arc::clone(&clock));
        async move {
            let l = durable_with(&dir, &clock, SEGMENT);
            for i in start..start + count {
                l.reserve(request(&format!("k{i}"), vec![line(1, i, 1, 10_000)]))
                    .await
                    .unwrap();
            }
            l.flush().await.unwrap();
        }
    };

    // Many held reservations: a snapshot much larger than a segment.
    run(300).await;
    let first = files("snap");
    assert_eq!(first.len(), 1, "{first:?}");
    let snapshot = first[0].1;
    assert!(snapshot > 4 * SEGMENT, "{snapshot}");

    // Less journal than that: several segments close, none is folded.
    run(40).await;
    let journal: u64 = files("log").iter().map(|f| f.1).sum();
    assert!(
        journal > 2 * SEGMENT && journal < snapshot,
        "{journal} vs {snapshot}"
    );
    assert_eq!(
        files("snap"),
        first,
        "folded before the journal reached the snapshot"
    );

    // More than that: folded, and what a restart reads stays bounded.
    run(400).await;
    let now = files("snap");
    assert!(now.len() == 1 && now != first, "not folded: {now:?}");
    let journal: u64 = files("log").iter().map(|f| f.1).sum();
    assert!(journal <= now[0].1 + 2 * SEGMENT, "{journal} after {now:?}");
}

/// The open segment has its space reserved; a crash leaves that space (and
/// maybe part of a batch in it) behind, and a restart recovers everything
/// acknowledged and cuts the rest off. Unwritten space anywhere but the end
/// of the newest segment is damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_journal_space_is_cut_off_after_a_crash() {
    const SEGMENT: u64 = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let newest = || files(dir.path(), "log").pop().unwrap().0;
    let len = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    let pad = |p: &std::path::Path, garbage_at: Option<u64>| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        let written = f.metadata().unwrap().len();
        f.set_len(SEGMENT).unwrap();
        if let Some(at) = garbage_at {
            std::os::unix::fs::FileExt::write_all_at(&f, &[9u8; 100], written + at).unwrap();
        }
    };

    let l = durable_with(dir.path(), &clock, SEGMENT);
    let mut kept = Vec::new();
    for i in 0..20u32 {
        let r = l
            .reserve(request(&format!("k{i}"), vec![line(1, i, 1, 100)]))
            .await
            .unwrap();
        kept.push(l.get(&r.id, None).await.unwrap());
    }
    #[cfg(target_os = "linux")]
    assert_eq!(len(&newest()), SEGMENT, "the open segment is preallocated");
    l.flush().await.unwrap();
    drop(l);
    let segment = newest();
    let written = len(&segment);
    assert!(
        written > 0 && written < SEGMENT,
        "a clean stop trims: {written}"
    );

    // What a crash leaves: the reserved space, then the same with part of
    // an unacknowledged batch a few pages into it.
    for garbage_at in [None, Some(8192)] {
        pad(&segment, garbage_at);
        let replayed = recovery::load(dir.path()).unwrap();
        assert_eq!(replayed.reservations.len(), kept.len());
        assert_eq!(len(&segment), written, "cut back to its records");
    }
    pad(&segment, None);
    let l = durable_with(dir.path(), &clock, SEGMENT);
    for r in &kept {
        assert_eq!(&l.get(&r.id, None).await.unwrap(), r);
    }
    l.flush().await.unwrap();
    drop(l);

    // Zeros where records should be, in a segment that is not the newest,
    // are not a tail to cut: start-up refuses.
    let segment = newest();
    let written = len(&segment);
    pad(&segment, None);
    let next = segment.with_file_name(journal::segment_name(u64::MAX / 2));
    std::fs::File::create(next).unwrap();
    match recovery::load(dir.path()) {
        Err(OpenError::Corrupt { offset, .. }) => assert_eq!(offset, written),
        other => panic!("zeros inside an older segment are damage: {other:?}"),
    }
}

/// A second process cannot open a directory in use.
#[test]
fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let _first = durable(dir.path(), &clock);
    let err = EmbeddedLedger::open(
        &EmbeddedOptions {
            dir: Some(dir.path().to_path_buf()),
            ..EmbeddedOptions::default()
        },
        clock as Arc<dyn Clock>,
        &Grid,
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::Locked(_)), "{err}");
}

/// Calls dropped at random points leave no partial state, and retrying
/// every call converges to the same outcome as if none had been dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_leave_consistent_state_and_retries_converge() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let l = durable(dir.path(), &clock);
    let supply = 40;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    use rand::{Rng, SeedableRng};
    for round in 0..30 {
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let l = l.clone();
                let req = request(&format!("r{round}-{i}"), vec![line(1, i % 3, 1, supply)]);
                let budget = std::time::Duration::from_micros(rng.random_range(0..3_000));
                tokio::spawn(async move {
                    let r = tokio::time::timeout(budget, l.reserve(req.clone())).await;
                    // Retry after a possible cancellation, under the same key.
                    let r = match r {
                        Ok(r) => r,
                        Err(_) => l.reserve(req.clone()).await,
                    };
                    if let Ok(res) = &r {
                        let c = tokio::time::timeout(budget, l.commit(commit(&res.id, "O"))).await;
                        if c.is_err() || res.id.as_str().ends_with('7') {
                            // Cancelled commit, or a change of mind: release must converge too.
                            let _ = tokio::time::timeout(budget, l.release(release(&res.id, true)))
                                .await;
                            l.release(release(&res.id, true)).await.unwrap();
                        }
                    }
                    (req, r)
                })
            })
            .collect();
        for c in calls {
            let (req, first) = c.await.unwrap();
            // A retry of the same key always gives the same reservation.
            let again = l.reserve(req).await;
            match (first, again) {
                (Ok(a), Ok(b)) => assert_eq!(a.id, b.id),
                (Err(LedgerError::InsufficientStock(_)), _) => {}
                (a, b) => panic!("diverged: {a:?} then {b:?}"),
            }
        }
    }
    // Every counted unit belongs to a committed, unreleased reservation.
    l.flush().await.unwrap();
    drop(l);
    let l = durable(dir.path(), &clock);
    for p in 0..3 {
        assert!(l.holds_table().counted(key(1, p)) <= supply);
    }
    let total = l.holds_table().total();
    let replayed = recovery::load(dir.path()).unwrap();
    let live: u64 = replayed
        .reservations
        .values()
        .filter(|w| {
            w.state == State::Committed || (w.state == State::Held && w.made.expires_at_ms > T0)
        })
        .map(|w| w.made.lines.iter().map(|l| u64::from(l.qty)).sum::<u64>())
        .sum();
    assert_eq!(total, live, "every counted unit is accounted for");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random concurrent rounds against the sequential model, in memory.
    #[test]
    fn matches_the_model_in_memory(
        (universe, rounds) in strategies::universe().prop_flat_map(|u| {
            let cells = u.supply.len();
            (Just(u), strategies::rounds(cells, 3))
        })
    ) {
        let clock = ManualClock::new(T0);
        let l = EmbeddedLedger::in_memory(clock.clone());
        let outcome = rt().block_on(model::check(&l, clock.as_ref(), &universe, &rounds));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// The same with the journal, then once more after a restart: the
    /// recovered ledger still agrees with the model.
    #[test]
    fn matches_the_model_durably_across_restarts(
        (universe, rounds) in strategies::universe().prop_flat_map(|u| {
            let cells = u.supply.len();
            (Just(u), strategies::rounds(cells, 3))
        })
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let rt = rt();
        let l = durable(dir.path(), &clock);
        let outcome = rt.block_on(model::check(&l, clock.as_ref(), &universe, &rounds));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        rt.block_on(l.expire_due()).unwrap();
        let mut before = l.holds_table().entries();
        before.sort();
        rt.block_on(l.flush()).unwrap();
        drop(l);
        let l = durable(dir.path(), &clock);
        let mut after = l.holds_table().entries();
        after.sort();
        prop_assert_eq!(before, after);
    }
}

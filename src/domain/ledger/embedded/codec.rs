//! The journal's records and their binary form.
//!
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload`, so a torn
//! write at the end of a file is recognised (short frame or bad checksum)
//! and never read as a record. Payloads are a tag byte and fields in a fixed
//! order: integers little-endian, strings and byte strings length-prefixed,
//! money as `rust_decimal`'s stable 16-byte form. Records name products and
//! suppliers by SKU and external id, never by this process's dense ids.

use rust_decimal::Decimal;

use super::super::{
    Delivery, HeldLine, IdempotencyKey, PurchaseOrder, RequestFingerprint, ReservationId, State,
    StockKey,
};
use crate::domain::address::Address;

/// Largest payload accepted when reading; anything bigger is corruption.
pub const PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes before the payload.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Key of a line whose SKU or supplier no longer resolves: counted under a
/// key no offer has, so it affects nothing and still balances.
pub const UNRESOLVED: StockKey = StockKey {
    supplier: u16::MAX,
    product: u32::MAX,
};

/// A reservation as made, everything later records refer back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// Identity.
    pub id: ReservationId,
    /// The idempotency key's scope: owner and key.
    pub owner: Option<String>,
    /// The key.
    pub key: IdempotencyKey,
    /// The request's digest.
    pub fingerprint: RequestFingerprint,
    /// What it holds.
    pub lines: Vec<HeldLine>,
    /// The caller's plan.
    pub plan: Vec<u8>,
    /// Destination.
    pub ship_to: Address,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub expires_at_ms: i64,
}

/// Everything about a reservation, as a snapshot keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    /// As made.
    pub made: Made,
    /// Stored state (a `Held` past expiry is expired by whoever loads it).
    pub state: State,
    /// Committed to.
    pub order_ref: Option<String>,
    /// Unix ms.
    pub committed_at_ms: Option<i64>,
    /// Why released.
    pub release_reason: Option<String>,
    /// Last change (Unix ms), for retention.
    pub changed_at_ms: i64,
    /// Purchase orders with their delivery progress.
    pub orders: Vec<PurchaseOrder>,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A reserve; with `commit`, an allocate.
    Reserve {
        /// The reservation.
        made: Made,
        /// `(order_ref, at_ms)` for an allocate.
        commit: Option<(String, i64)>,
    },
    /// A commit of a hold.
    Commit {
        /// Which.
        id: ReservationId,
        /// To which order.
        order_ref: String,
        /// When.
        at_ms: i64,
    },
    /// A release.
    Release {
        /// Which.
        id: ReservationId,
        /// Why.
        reason: String,
        /// When.
        at_ms: i64,
    },
    /// A hold ran out and was replenished.
    Expire {
        /// Which.
        id: ReservationId,
        /// When it was replenished.
        at_ms: i64,
    },
    /// A purchase order's send outcome.
    Delivery {
        /// The reservation.
        id: ReservationId,
        /// The order.
        po_number: String,
        /// Progress after this send.
        delivery: Delivery,
        /// When.
        at_ms: i64,
    },
    /// A full feed from a supplier as of `as_of_ms`.
    SupplyRefreshed {
        /// The supplier's external id.
        supplier_id: String,
        /// Data time (Unix ms).
        as_of_ms: i64,
    },
    /// A whole reservation, in a snapshot.
    Whole(Box<Whole>),
}

const TAG_RESERVE: u8 = 1;
const TAG_COMMIT: u8 = 2;
const TAG_RELEASE: u8 = 3;
const TAG_DELIVERY: u8 = 4;
const TAG_SUPPLY: u8 = 5;
const TAG_WHOLE: u8 = 6;
const TAG_EXPIRE: u8 = 7;

/// Appends `record` as one frame to `out`.
pub fn encode_frame(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    let mut w = Writer(out);
    match record {
        Record::Reserve { made, commit } => {
            w.reserve(made, commit.as_ref().map(|(r, at)| (r.as_str(), *at)));
        }
        Record::Commit {
            id,
            order_ref,
            at_ms,
        } => {
            w.u8(TAG_COMMIT);
            w.str(id.as_str());
            w.str(order_ref);
            w.i64(*at_ms);
        }
        Record::Release { id, reason, at_ms } => {
            w.u8(TAG_RELEASE);
            w.str(id.as_str());
            w.str(reason);
            w.i64(*at_ms);
        }
        Record::Expire { id, at_ms } => {
            w.u8(TAG_EXPIRE);
            w.str(id.as_str());
            w.i64(*at_ms);
        }
        Record::Delivery {
            id,
            po_number,
            delivery,
            at_ms,
        } => {
            w.u8(TAG_DELIVERY);
            w.str(id.as_str());
            w.str(po_number);
            w.delivery(delivery);
            w.i64(*at_ms);
        }
        Record::SupplyRefreshed {
            supplier_id,
            as_of_ms,
        } => {
            w.u8(TAG_SUPPLY);
            w.str(supplier_id);
            w.i64(*as_of_ms);
        }
        Record::Whole(whole) => {
            w.u8(TAG_WHOLE);
            w.made(&whole.made);
            w.u8(state_code(whole.state));
            w.opt(whole.order_ref.as_ref(), |w, s| w.str(s));
            w.opt(whole.committed_at_ms.as_ref(), |w, t| w.i64(*t));
            w.opt(whole.release_reason.as_ref(), |w, s| w.str(s));
            w.i64(whole.changed_at_ms);
            w.u32(whole.orders.len() as u32);
            for o in &whole.orders {
                w.str(&o.po_number);
                w.str(&o.supplier_id);
                w.lines(&o.lines);
                w.delivery(&o.delivery);
            }
        }
    }
    finish_frame(out, start);
}

/// Appends a reserve record as one frame, from borrowed parts: the hot path
/// encodes without copying the reservation first.
pub fn encode_reserve_frame(made: &Made, commit: Option<(&str, i64)>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    Writer(out).reserve(made, commit);
    finish_frame(out, start);
}

/// Fills in the length and checksum of the frame that starts at `start`.
fn finish_frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - FRAME_HEADER_BYTES) as u32;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading one frame from a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A record and the bytes its frame took.
    Record(Box<Record>, usize),
    /// The buffer ends inside a frame, or the frame's checksum is wrong: a
    /// torn write, if this is the end of the newest file.
    Torn,
    /// The frame is whole and its checksum right, but it does not decode:
    /// written by something else.
    Invalid(String),
}

/// Reads the frame at the start of `buf`. `buf` must not be empty.
pub fn decode_frame(buf: &[u8]) -> Frame {
    if buf.len() < FRAME_HEADER_BYTES {
        return Frame::Torn;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    // No record is empty: a zero length is space reserved for the journal
    // and never written.
    if len == 0 || len > PAYLOAD_BYTES_MAX || buf.len() < FRAME_HEADER_BYTES + len {
        return Frame::Torn;
    }
    let payload = &buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
    if crc32fast::hash(payload) != crc {
        return Frame::Torn;
    }
    let mut r = Reader(payload);
    match r.record() {
        Ok(rec) if r.0.is_empty() => Frame::Record(Box::new(rec), FRAME_HEADER_BYTES + len),
        Ok(_) => Frame::Invalid("trailing bytes after a record".into()),
        Err(e) => Frame::Invalid(e),
    }
}

fn state_code(s: State) -> u8 {
    match s {
        State::Held => 1,
        State::Committed => 2,
        State::Released => 3,
        State::Expired => 4,
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
            None => self.u8(0),
        }
    }
    fn lines(&mut self, lines: &[HeldLine]) {
        self.u32(lines.len() as u32);
        for l in lines {
            self.str(&l.supplier_id);
            self.str(&l.sku);
            self.str(&l.supplier_sku);
            self.u32(l.qty);
            self.0.extend_from_slice(&l.unit_cost.serialize());
        }
    }
    fn made(&mut self, m: &Made) {
        self.str(m.id.as_str());
        self.opt(m.owner.as_ref(), |w, s| w.str(s));
        self.str(m.key.as_str());
        self.0.extend_from_slice(&m.fingerprint.0.to_le_bytes());
        self.lines(&m.lines);
        self.bytes(&m.plan);
        self.str(&m.ship_to.country_code);
        self.str(&m.ship_to.postal_code);
        self.u8(u8::from(m.ship_to.residential));
        self.i64(m.created_at_ms);
        self.i64(m.expires_at_ms);
    }
    fn reserve(&mut self, made: &Made, commit: Option<(&str, i64)>) {
        self.u8(TAG_RESERVE);
        self.made(made);
        self.opt(commit.as_ref(), |w, (r, at)| {
            w.str(r);
            w.i64(*at);
        });
    }
    fn delivery(&mut self, d: &Delivery) {
        match d {
            Delivery::Pending {
                attempts,
                last_error,
                next_attempt_at_ms,
            } => {
                self.u8(1);
                self.u32(*attempts);
                self.opt(last_error.as_ref(), |w, s| w.str(s));
                self.i64(*next_attempt_at_ms);
            }
            Delivery::Acknowledged { attempts, at_ms } => {
                self.u8(2);
                self.u32(*attempts);
                self.i64(*at_ms);
            }
            Delivery::Cancelled => self.u8(3),
        }
    }
}

struct Reader<'a>(&'a [u8]);

type R<T> = Result<T, String>;

impl Reader<'_> {
    fn take(&mut self, n: usize) -> R<&[u8]> {
        if self.0.len() < n {
            return Err(format!(
                "record ends early: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> R<i64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?).map_err(|_| "a string is not UTF-8".to_string())
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            t => Err(format!("bad option marker {t}")),
        }
    }
    fn count(&mut self, what: &str) -> R<usize> {
        let n = self.u32()? as usize;
        // Each element takes more than one byte; more than the bytes left is corrupt.
        if n > self.0.len() {
            return Err(format!("{what} count {n} exceeds the record"));
        }
        Ok(n)
    }
    fn lines(&mut self) -> R<Vec<HeldLine>> {
        let n = self.count("line")?;
        (0..n)
            .map(|_| {
                let supplier_id = self.str()?;
                let sku = self.str()?;
                let supplier_sku = self.str()?;
                let qty = self.u32()?;
                let mut d = [0u8; 16];
                d.copy_from_slice(self.take(16)?);
                Ok(HeldLine {
                    key: UNRESOLVED,
                    supplier_id,
                    sku,
                    supplier_sku,
                    qty,
                    unit_cost: Decimal::deserialize(d),
                })
            })
            .collect()
    }
    fn made(&mut self) -> R<Made> {
        let id = ReservationId::new(self.str()?);
        let owner = self.opt(|r| r.str())?;
        let key = IdempotencyKey::parse(&self.str()?)?;
        let mut fp = [0u8; 16];
        fp.copy_from_slice(self.take(16)?);
        Ok(Made {
            id,
            owner,
            key,
            fingerprint: RequestFingerprint(u128::from_le_bytes(fp)),
            lines: self.lines()?,
            plan: self.bytes()?,
            ship_to: Address {
                country_code: self.str()?,
                postal_code: self.str()?,
                residential: self.u8()? != 0,
            },
            created_at_ms: self.i64()?,
            expires_at_ms: self.i64()?,
        })
    }
    fn delivery(&mut self) -> R<Delivery> {
        match self.u8()? {
            1 => Ok(Delivery::Pending {
                attempts: self.u32()?,
                last_error: self.opt(|r| r.str())?,
                next_attempt_at_ms: self.i64()?,
            }),
            2 => Ok(Delivery::Acknowledged {
                attempts: self.u32()?,
                at_ms: self.i64()?,
            }),
            3 => Ok(Delivery::Cancelled),
            t => Err(format!("bad delivery state {t}")),
        }
    }
    fn state(&mut self) -> R<State> {
        match self.u8()? {
            1 => Ok(State::Held),
            2 => Ok(State::Committed),
            3 => Ok(State::Released),
            4 => Ok(State::Expired),
            t => Err(format!("bad reservation state {t}")),
        }
    }
    fn record(&mut self) -> R<Record> {
        match self.u8()? {
            TAG_RESERVE => Ok(Record::Reserve {
                made: self.made()?,
                commit: self.opt(|r| Ok((r.str()?, r.i64()?)))?,
            }),
            TAG_COMMIT => Ok(Record::Commit {
                id: ReservationId::new(self.str()?),
                order_ref: self.str()?,
                at_ms: self.i64()?,
            }),
            TAG_RELEASE => Ok(Record::Release {
                id: ReservationId::new(self.str()?),
                reason: self.str()?,
                at_ms: self.i64()?,
            }),
            TAG_EXPIRE => Ok(Record::Expire {
                id: ReservationId::new(self.str()?),
                at_ms: self.i64()?,
            }),
            TAG_DELIVERY => Ok(Record::Delivery {
                id: ReservationId::new(self.str()?),
                po_number: self.str()?,
                delivery: self.delivery()?,
                at_ms: self.i64()?,
            }),
            TAG_SUPPLY => Ok(Record::SupplyRefreshed {
                supplier_id: self.str()?,
                as_of_ms: self.i64()?,
            }),
            TAG_WHOLE => {
                let made = self.made()?;
                let state = self.state()?;
                let order_ref = self.opt(|r| r.str())?;
                let committed_at_ms = self.opt(|r| r.i64())?;
                let release_reason = self.opt(|r| r.str())?;
                let changed_at_ms = self.i64()?;
                let n = self.count("order")?;
                let orders = (0..n)
                    .map(|_| {
                        let po_number = self.str()?;
                        let supplier_id = self.str()?;
                        let lines = self.lines()?;
                        Ok(PurchaseOrder {
                            po_number,
                            supplier: UNRESOLVED.supplier,
                            supplier_id,
                            lines,
                            delivery: self.delivery()?,
                        })
                    })
                    .collect::<R<Vec<_>>>()?;
                Ok(Record::Whole(Box::new(Whole {
                    made,
                    state,
                    order_ref,
                    committed_at_ms,
                    release_reason,
                    changed_at_ms,
                    orders,
                })))
            }
            t => Err(format!("unknown record tag {t}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_made() -> Made {
        Made {
            id: ReservationId::new("R-1"),
            owner: Some("shop".into()),
            key: IdempotencyKey::parse("k1").unwrap(),
            fingerprint: RequestFingerprint(u128::MAX - 7),
            lines: vec![HeldLine {
                key: UNRESOLVED,
                supplier_id: "SUP1".into(),
                sku: "SKU-1".into(),
                supplier_sku: "X-1".into(),
                qty: 3,
                unit_cost: Decimal::new(1234, 2),
            }],
            plan: vec![1, 2, 3],
            ship_to: Address {
                country_code: "US".into(),
                postal_code: "10001".into(),
                residential: true,
            },
            created_at_ms: 5,
            expires_at_ms: 9,
        }
    }

    #[test]
    fn every_record_round_trips() {
        let made = sample_made();
        let records = vec![
            Record::Reserve {
                made: made.clone(),
                commit: Some(("O-1".into(), 7)),
            },
            Record::Commit {
                id: made.id.clone(),
                order_ref: "O".into(),
                at_ms: -1,
            },
            Record::Release {
                id: made.id.clone(),
                reason: "r".into(),
                at_ms: 3,
            },
            Record::Expire {
                id: made.id.clone(),
                at_ms: 4,
            },
            Record::Delivery {
                id: made.id.clone(),
                po_number: "PO-1-1".into(),
                delivery: Delivery::Pending {
                    attempts: 2,
                    last_error: Some("503".into()),
                    next_attempt_at_ms: 11,
                },
                at_ms: 10,
            },
            Record::SupplyRefreshed {
                supplier_id: "SUP1".into(),
                as_of_ms: 99,
            },
            Record::Whole(Box::new(Whole {
                made: made.clone(),
                state: State::Committed,
                order_ref: Some("O".into()),
                committed_at_ms: Some(6),
                release_reason: None,
                changed_at_ms: 6,
                orders: vec![PurchaseOrder {
                    po_number: "PO-1-1".into(),
                    supplier: UNRESOLVED.supplier,
                    supplier_id: "SUP1".into(),
                    lines: made.lines.clone(),
                    delivery: Delivery::Acknowledged {
                        attempts: 1,
                        at_ms: 8,
                    },
                }],
            })),
        ];
        let mut buf = Vec::new();
        for r in &records {
            encode_frame(r, &mut buf);
        }
        let mut at = 0;
        for r in &records {
            match decode_frame(&buf[at..]) {
                Frame::Record(got, n) => {
                    assert_eq!(&*got, r);
                    at += n;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn the_borrowed_reserve_encoding_is_the_record_encoding() {
        let made = sample_made();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_frame(
            &Record::Reserve {
                made: made.clone(),
                commit: Some(("O".into(), 3)),
            },
            &mut a,
        );
        encode_reserve_frame(&made, Some(("O", 3)), &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn torn_and_flipped_frames_are_never_records() {
        let mut buf = Vec::new();
        encode_frame(
            &Record::Reserve {
                made: sample_made(),
                commit: None,
            },
            &mut buf,
        );
        for cut in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..cut]), Frame::Torn, "cut at {cut}");
        }
        for i in FRAME_HEADER_BYTES..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x40;
            assert_eq!(decode_frame(&b), Frame::Torn, "flip at {i}");
        }
        // Reserved, never-written space: zeros, whose checksum would match
        // an empty payload.
        assert_eq!(decode_frame(&[0u8; 64]), Frame::Torn);
    }
}

//! Reading a supplier's stock answer, which is not trusted in any way.
//!
//! The envelope (JSON object, RFC 3339 `as_of`, `items` array) must be right
//! or the whole answer is dropped. Each item is then judged alone: a bad item
//! (wrong types, negative stock, an unusable cost, another currency, an item
//! nobody asked about, a repeat) is dropped with its reason and the others
//! stand. An asked item missing from the answer is "unknown to the supplier".

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::adapters::http::body::{json_kind, snippet};
use crate::domain::money::parse_cost;
use crate::domain::realtime::ItemState;

/// Why one item of an answer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// A field has the wrong JSON type, or the item is not an object.
    WrongType,
    /// `available` is negative.
    NegativeStock,
    /// `available` is larger than any stock we hold.
    TooMuchStock,
    /// `unit_cost` is not a usable decimal (negative, too precise, too large).
    BadCost,
    /// Priced in another currency.
    Currency,
    /// Nobody asked about this item.
    Unasked,
    /// The item appears more than once.
    Duplicate,
}

impl DropReason {
    /// Low-cardinality label for metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            DropReason::WrongType => "wrong_type",
            DropReason::NegativeStock => "negative_stock",
            DropReason::TooMuchStock => "too_much_stock",
            DropReason::BadCost => "bad_cost",
            DropReason::Currency => "currency",
            DropReason::Unasked => "unasked",
            DropReason::Duplicate => "duplicate",
        }
    }
}

/// One dropped item: why, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// The asked item it was about, when it named one.
    pub sku: Option<Arc<str>>,
    /// Why.
    pub reason: DropReason,
    /// A description for the log.
    pub detail: String,
}

/// An answer whose envelope was sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StockAnswer {
    /// When the supplier's data is from (Unix seconds).
    pub as_of_s: u32,
    /// Every asked item that is known (valid) or unknown (missing); dropped
    /// items are absent.
    pub items: HashMap<Arc<str>, ItemState>,
    /// The items dropped.
    pub dropped: Vec<Dropped>,
}

/// Reads `body` as the answer to a question about `asked`, priced in `currency`.
/// `Err` says why the whole answer is unusable.
pub(crate) fn stock_answer(
    body: &[u8],
    asked: &[Arc<str>],
    currency: &str,
) -> Result<StockAnswer, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", snippet(body)))?;
    let Value::Object(doc) = doc else {
        return Err(format!("the answer is {}, not an object", json_kind(&doc)));
    };
    let as_of_s = match doc.get("as_of") {
        Some(Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| u32::try_from(t.unix_timestamp()).ok())
                .ok_or_else(|| {
                    format!(
                        "`as_of` {:?} is not an RFC 3339 time",
                        snippet(s.as_bytes())
                    )
                })?
        }
        Some(other) => return Err(format!("`as_of` is {}, not a string", json_kind(other))),
        None => return Err("`as_of` is missing".into()),
    };
    let list = match doc.get("items") {
        Some(Value::Array(list)) => list,
        Some(other) => return Err(format!("`items` is {}, not an array", json_kind(other))),
        None => return Err("`items` is missing".into()),
    };
    let mut items: HashMap<Arc<str>, ItemState> = HashMap::with_capacity(asked.len());
    let mut dropped = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        match item(entry, asked, currency) {
            Ok((sku, state)) => {
                if items.insert(Arc::clone(sku), state).is_some() {
                    dropped.push(Dropped {
                        sku: Some(Arc::clone(sku)),
                        reason: DropReason::Duplicate,
                        detail: format!("items[{i}]: `{sku}` appears more than once"),
                    });
                }
            }
            Err((sku, reason, why)) => dropped.push(Dropped {
                sku: sku.cloned(),
                reason,
                detail: format!("items[{i}]: {why}"),
            }),
        }
    }
    // An item answered badly (or twice: which answer is right is unknowable)
    // is neither known nor unknown: its feed data stands.
    for d in &dropped {
        if let Some(sku) = &d.sku {
            items.remove(sku.as_ref());
        }
    }
    for sku in asked {
        let answered_badly = dropped.iter().any(|d| d.sku.as_ref() == Some(sku));
        if !answered_badly {
            items.entry(Arc::clone(sku)).or_insert(ItemState::Unknown);
        }
    }
    Ok(StockAnswer {
        as_of_s,
        items,
        dropped,
    })
}

/// Why an item was dropped, and the asked item it named (if any).
type ItemError<'a> = (Option<&'a Arc<str>>, DropReason, String);

fn item<'a>(
    entry: &Value,
    asked: &'a [Arc<str>],
    currency: &str,
) -> Result<(&'a Arc<str>, ItemState), ItemError<'a>> {
    let Value::Object(fields) = entry else {
        return Err((
            None,
            DropReason::WrongType,
            format!("is {}, not an object", json_kind(entry)),
        ));
    };
    let sku = match fields.get("supplier_sku") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err((
                None,
                DropReason::WrongType,
                format!("supplier_sku is {}", json_kind(other)),
            ))
        }
        None => {
            return Err((
                None,
                DropReason::WrongType,
                "supplier_sku is missing".into(),
            ))
        }
    };
    let Some(asked_sku) = asked.iter().find(|a| a.as_ref() == sku) else {
        return Err((
            None,
            DropReason::Unasked,
            format!("`{}` was not asked about", snippet(sku.as_bytes())),
        ));
    };
    item_fields(fields, asked_sku, currency).map_err(|(reason, why)| (Some(asked_sku), reason, why))
}

/// The numbers of an asked item.
fn item_fields<'a>(
    fields: &serde_json::Map<String, Value>,
    asked_sku: &'a Arc<str>,
    currency: &str,
) -> Result<(&'a Arc<str>, ItemState), (DropReason, String)> {
    let sku = asked_sku.as_ref();
    let wrong = |what: String| (DropReason::WrongType, what);
    let available = match fields.get("available") {
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(v), _) => u32::try_from(v).map_err(|_| {
                (
                    DropReason::TooMuchStock,
                    format!("`{sku}`: available {v} is too large"),
                )
            })?,
            (None, Some(v)) => {
                return Err((
                    DropReason::NegativeStock,
                    format!("`{sku}`: available {v} is negative"),
                ))
            }
            (None, None) => {
                return Err(wrong(format!(
                    "`{sku}`: available {n} is not a whole number"
                )))
            }
        },
        Some(other) => {
            return Err(wrong(format!(
                "`{sku}`: available is {}, not a number",
                json_kind(other)
            )))
        }
        None => return Err(wrong(format!("`{sku}`: available is missing"))),
    };
    let cost = match fields.get("unit_cost") {
        Some(Value::String(s)) => parse_cost(s.as_bytes())
            .map_err(|e| (DropReason::BadCost, format!("`{sku}`: unit_cost {e}")))?,
        Some(other) => {
            return Err(wrong(format!(
                "`{sku}`: unit_cost is {}, not a decimal string",
                json_kind(other)
            )))
        }
        None => return Err(wrong(format!("`{sku}`: unit_cost is missing"))),
    };
    match fields.get("currency") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if c.trim().eq_ignore_ascii_case(currency) => {}
        Some(Value::String(c)) => {
            return Err((
                DropReason::Currency,
                format!(
                    "`{sku}`: priced in {}, not {currency}",
                    snippet(c.as_bytes())
                ),
            ))
        }
        Some(other) => return Err(wrong(format!("`{sku}`: currency is {}", json_kind(other)))),
    }
    Ok((asked_sku, ItemState::Known { available, cost }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(skus: &[&str]) -> Vec<Arc<str>> {
        skus.iter().map(|s| Arc::from(*s)).collect()
    }

    fn state(a: &StockAnswer, sku: &str) -> Option<ItemState> {
        a.items.get(sku).copied()
    }

    const AS_OF: &str = "2026-01-01T00:00:00Z";

    /// A sound answer: known items with their numbers, missing ones unknown.
    #[test]
    fn reads_known_and_unknown_items() {
        let body = format!(
            r#"{{"as_of":"{AS_OF}","items":[{{"supplier_sku":"A","available":5,"unit_cost":"12.34","currency":"usd"}},{{"supplier_sku":"B","available":0,"unit_cost":"0.5"}}]}}"#
        );
        let a = stock_answer(body.as_bytes(), &asked(&["A", "B", "C"]), "USD").unwrap();
        assert_eq!(a.as_of_s, 1_767_225_600);
        assert_eq!(
            state(&a, "A"),
            Some(ItemState::Known {
                available: 5,
                cost: 123_400
            })
        );
        assert_eq!(
            state(&a, "B"),
            Some(ItemState::Known {
                available: 0,
                cost: 5_000
            })
        );
        assert_eq!(state(&a, "C"), Some(ItemState::Unknown));
        assert!(a.dropped.is_empty());
    }

    /// Envelope faults drop the whole answer, saying which.
    #[test]
    fn bad_envelopes_are_refused() {
        let asked = asked(&["A"]);
        let cases: [(&str, &str); 7] = [
            (r#"{"as_of":"2026-01-01T00:0"#, "not JSON"),
            (r#"[1,2]"#, "not an object"),
            (r#"{"items":[]}"#, "`as_of` is missing"),
            (r#"{"as_of":12,"items":[]}"#, "not a string"),
            (r#"{"as_of":"yesterday","items":[]}"#, "RFC 3339"),
            (&format!(r#"{{"as_of":"{AS_OF}"}}"#), "`items` is missing"),
            (
                &format!(r#"{{"as_of":"{AS_OF}","items":{{}}}}"#),
                "not an array",
            ),
        ];
        for (body, want) in cases {
            let err = stock_answer(body.as_bytes(), &asked, "USD").unwrap_err();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    /// Each bad item is dropped with its reason; the good ones stand, and a
    /// dropped item is not taken for unknown.
    #[test]
    fn bad_items_are_dropped_one_by_one() {
        let body = format!(
            r#"{{"as_of":"{AS_OF}","items":[
                {{"supplier_sku":"A","available":-3,"unit_cost":"1.00"}},
                {{"supplier_sku":"B","available":"7","unit_cost":"1.00"}},
                {{"supplier_sku":"C","available":7,"unit_cost":1.5}},
                {{"supplier_sku":"D","available":7,"unit_cost":"1.00","currency":"EUR"}},
                {{"supplier_sku":"E","available":7,"unit_cost":"-1.00"}},
                {{"supplier_sku":"F","available":7.5,"unit_cost":"1.00"}},
                {{"supplier_sku":"G","available":99999999999,"unit_cost":"1.00"}},
                {{"supplier_sku":"H","available":1,"unit_cost":"1.00001"}},
                {{"supplier_sku":"X","available":1,"unit_cost":"1.00"}},
                {{"supplier_sku":"I","available":1,"unit_cost":"1.00"}},
                {{"supplier_sku":"I","available":2,"unit_cost":"1.00"}},
                "J",
                {{"supplier_sku":"K","available":4,"unit_cost":"2.00"}}
            ]}}"#
        );
        let skus = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"];
        let a = stock_answer(body.as_bytes(), &asked(&skus), "USD").unwrap();
        let reasons: Vec<&str> = a.dropped.iter().map(|d| d.reason.label()).collect();
        assert_eq!(
            reasons,
            vec![
                "negative_stock",
                "wrong_type",
                "wrong_type",
                "currency",
                "bad_cost",
                "wrong_type",
                "too_much_stock",
                "bad_cost",
                "unasked",
                "duplicate",
                "wrong_type"
            ]
        );
        for sku in ["A", "B", "C", "D", "E", "F", "G", "H", "I"] {
            assert_eq!(state(&a, sku), None, "{sku} dropped, not unknown");
        }
        assert_eq!(
            state(&a, "J"),
            Some(ItemState::Unknown),
            "a bare string names nothing"
        );
        assert_eq!(
            state(&a, "K"),
            Some(ItemState::Known {
                available: 4,
                cost: 20_000
            })
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic and never yield an item nobody asked about.
        #[test]
        fn arbitrary_answers_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let asked = asked(&["A", "B"]);
            if let Ok(a) = stock_answer(&body, &asked, "USD") {
                proptest::prop_assert!(a.items.keys().all(|k| asked.contains(k)));
            }
        }
    }
}

//! Box packing v1: first-fit decreasing by volume with box upgrades.
//!
//! This is a volume heuristic, not a 3D placement search: every unit must fit
//! the box's inner dimensions on its own (any axis-aligned rotation), and the
//! units in a box together may use at most `fill_factor_pct` of its inner
//! volume, which stands in for the space real-world packing wastes.

use super::tables::{BoxSpec, Settings};
use super::{FreightError, Item, ItemLine, Parcel, OWN_PACKAGING};

/// One unit to pack, with its dimensions sorted longest first.
#[derive(Clone, Copy, Debug)]
struct Unit {
    dims_mm: [u32; 3],
    weight_g: u32,
    volume_mm3: u128,
}

/// A parcel being filled: which box, and the running envelope of its contents.
#[derive(Clone, Debug)]
pub(super) struct OpenParcel {
    /// Index into the box catalog, or `None` for a unit in its own packaging.
    pub box_idx: Option<usize>,
    /// Element-wise max of the contents' sorted dimensions: a box holds every
    /// unit (each rotated on its own) iff this fits its sorted inner dimensions.
    pub max_dims_mm: [u32; 3],
    pub contents_volume_mm3: u128,
    pub contents_weight_g: u64,
    /// Indices into the request's lines, one per unit (for tests and callers that need contents).
    pub units: Vec<usize>,
}

fn sorted_dims(item: &Item) -> [u32; 3] {
    let mut d = [item.length_mm, item.width_mm, item.height_mm];
    d.sort_unstable_by(|a, b| b.cmp(a));
    d
}

fn holds(
    b: &BoxSpec,
    max_dims: [u32; 3],
    volume: u128,
    weight: u64,
    count: usize,
    fill_pct: u32,
) -> bool {
    let dims_ok = max_dims.iter().zip(b.inner_mm.iter()).all(|(d, i)| d <= i);
    let weight_ok = weight + u64::from(b.tare_weight_g) <= u64::from(b.max_weight_g);
    // A lone unit that fits the dimensions always fits; the fill factor models
    // the gaps left between several units.
    let volume_ok = count <= 1 || volume * 100 <= b.inner_volume_mm3 * u128::from(fill_pct);
    dims_ok && weight_ok && volume_ok
}

fn merged(p: &OpenParcel, u: &Unit) -> ([u32; 3], u128, u64, usize) {
    let mut m = p.max_dims_mm;
    for (a, b) in m.iter_mut().zip(u.dims_mm) {
        *a = (*a).max(b);
    }
    (
        m,
        p.contents_volume_mm3 + u.volume_mm3,
        p.contents_weight_g + u64::from(u.weight_g),
        p.units.len() + 1,
    )
}

/// Checks the request lines and returns the number of units.
pub(super) fn count_units(lines: &[ItemLine], settings: &Settings) -> Result<usize, FreightError> {
    let mut units: u64 = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.quantity == 0 {
            continue;
        }
        let it = &line.item;
        if it.length_mm == 0 || it.width_mm == 0 || it.height_mm == 0 {
            return Err(FreightError::InvalidRequest {
                reason: format!("line {i}: item dimensions must be positive"),
            });
        }
        units += u64::from(line.quantity);
    }
    if units == 0 {
        return Err(FreightError::EmptyShipment);
    }
    if units > u64::from(settings.max_units_per_request) {
        return Err(FreightError::InvalidRequest {
            reason: format!(
                "{units} units; at most {} are rated at once",
                settings.max_units_per_request
            ),
        });
    }
    usize::try_from(units).map_err(|_| FreightError::InvalidRequest {
        reason: "too many units".into(),
    })
}

/// Packs the lines into open parcels (boxes first in opening order, then own-packaging units).
pub(super) fn pack(
    lines: &[ItemLine],
    boxes: &[BoxSpec],
    settings: &Settings,
) -> Result<Vec<OpenParcel>, FreightError> {
    let n = count_units(lines, settings)?;
    let mut order: Vec<(Unit, usize)> = Vec::with_capacity(n);
    for (li, line) in lines.iter().enumerate() {
        let dims_mm = sorted_dims(&line.item);
        // u128: three u32 sides overflow u64.
        let volume_mm3 = dims_mm.iter().map(|&d| u128::from(d)).product();
        let unit = Unit {
            dims_mm,
            weight_g: line.item.weight_g,
            volume_mm3,
        };
        order.extend(std::iter::repeat_n((unit, li), line.quantity as usize));
    }
    // Decreasing volume, then weight; the line index keeps ties deterministic.
    order.sort_by(|(a, ai), (b, bi)| {
        (b.volume_mm3, b.weight_g, b.dims_mm, ai).cmp(&(a.volume_mm3, a.weight_g, a.dims_mm, bi))
    });

    let fill = settings.fill_factor_pct;
    let mut parcels: Vec<OpenParcel> = Vec::new();
    let mut own: Vec<OpenParcel> = Vec::new();
    'units: for (u, li) in order {
        // 1. First fit into an open box.
        for p in parcels.iter_mut() {
            let (m, v, w, c) = merged(p, &u);
            if p.box_idx
                .and_then(|b| boxes.get(b))
                .is_some_and(|b| holds(b, m, v, w, c, fill))
            {
                (p.max_dims_mm, p.contents_volume_mm3, p.contents_weight_g) = (m, v, w);
                p.units.push(li);
                continue 'units;
            }
        }
        // 2. Upgrade an open box to a bigger one holding its contents plus this unit:
        //    one larger parcel almost always costs less than two.
        for p in parcels.iter_mut() {
            let (m, v, w, c) = merged(p, &u);
            let current = p.box_idx.unwrap_or(0);
            if let Some(bi) =
                (current + 1..boxes.len()).find(|&bi| holds(&boxes[bi], m, v, w, c, fill))
            {
                p.box_idx = Some(bi);
                (p.max_dims_mm, p.contents_volume_mm3, p.contents_weight_g) = (m, v, w);
                p.units.push(li);
                continue 'units;
            }
        }
        // 3. Open the smallest box that holds it, else ship it in its own packaging.
        let fresh = OpenParcel {
            box_idx: None,
            max_dims_mm: u.dims_mm,
            contents_volume_mm3: u.volume_mm3,
            contents_weight_g: u64::from(u.weight_g),
            units: vec![li],
        };
        match boxes
            .iter()
            .position(|b| holds(b, u.dims_mm, u.volume_mm3, u64::from(u.weight_g), 1, fill))
        {
            Some(bi) => parcels.push(OpenParcel {
                box_idx: Some(bi),
                ..fresh
            }),
            None => own.push(fresh),
        }
    }
    parcels.extend(own);
    Ok(parcels)
}

/// Turns an open parcel into the public description (outer dimensions, gross weight).
pub(super) fn to_parcel(
    p: &OpenParcel,
    boxes: &[BoxSpec],
    billable_weight_g: impl Fn(u32, [u32; 3]) -> u32,
) -> Parcel {
    let (box_id, dims, tare) = match p.box_idx.and_then(|b| boxes.get(b)) {
        Some(b) => (b.id.clone(), b.outer_mm, b.tare_weight_g),
        None => (OWN_PACKAGING.to_string(), p.max_dims_mm, 0),
    };
    // Saturate rather than wrap: an absurd weight is then rejected by carrier limits.
    let weight_g = u32::try_from(p.contents_weight_g + u64::from(tare)).unwrap_or(u32::MAX);
    Parcel {
        box_id,
        weight_g,
        billable_weight_g: billable_weight_g(weight_g, dims),
        length_mm: dims[0],
        width_mm: dims[1],
        height_mm: dims[2],
    }
}

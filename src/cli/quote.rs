//! `stockroute quote`: asks a running server for a quote and prints the plan
//! as a table.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use clap::Args;

use crate::pb;

/// Arguments of `stockroute quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Destination as COUNTRY:POSTCODE, e.g. US:10001 or GB:"SW1A 1AA".
    #[arg(long)]
    pub to: String,
    /// Basket lines as SKU:QTY.
    #[arg(required = true)]
    pub lines: Vec<String>,
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// cheapest, fastest or fewest-shipments.
    #[arg(long, default_value = "cheapest")]
    pub objective: String,
    /// Accept a plan that leaves some units out.
    #[arg(long)]
    pub partial: bool,
    /// Let one line come from several suppliers.
    #[arg(long)]
    pub split: bool,
    /// Deliver to a residence.
    #[arg(long)]
    pub residential: bool,
    /// At most this many shipments (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub max_shipments: u32,
    /// Suppliers not to use (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Every shipment must arrive within this many days (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub within_days: u32,
}

/// Parses `SKU:QTY`.
pub fn parse_line(s: &str) -> anyhow::Result<pb::BasketLine> {
    let (sku, qty) = s
        .rsplit_once(':')
        .with_context(|| format!("`{s}`: expected SKU:QTY"))?;
    let quantity = qty
        .parse::<u32>()
        .with_context(|| format!("`{s}`: quantity `{qty}` is not a whole number"))?;
    Ok(pb::BasketLine {
        sku: sku.to_owned(),
        quantity,
    })
}

/// Parses `CC:POSTCODE`.
pub fn parse_to(s: &str, residential: bool) -> anyhow::Result<pb::Address> {
    let (cc, postal) = s
        .split_once(':')
        .with_context(|| format!("`{s}`: expected COUNTRY:POSTCODE"))?;
    Ok(pb::Address {
        country_code: cc.to_owned(),
        postal_code: postal.to_owned(),
        residential,
    })
}

fn objective(s: &str) -> anyhow::Result<pb::Objective> {
    Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "cheapest" => pb::Objective::Cheapest,
        "fastest" => pb::Objective::Fastest,
        "fewest-shipments" | "fewest" => pb::Objective::FewestShipments,
        other => bail!("unknown objective `{other}`: use cheapest, fastest or fewest-shipments"),
    })
}

/// Runs the command.
pub async fn run(args: QuoteArgs) -> anyhow::Result<()> {
    let lines = args
        .lines
        .iter()
        .map(|l| parse_line(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let request = pb::QuoteRequest {
        lines,
        ship_to: Some(parse_to(&args.to, args.residential)?),
        options: Some(pb::QuoteOptions {
            objective: objective(&args.objective)? as i32,
            allow_partial: args.partial,
            allow_split_lines: args.split,
            max_shipments: args.max_shipments,
            exclude_suppliers: args.exclude.clone(),
            realtime_budget_ms: 0,
            arrive_within_days: args.within_days,
        }),
    };
    let endpoint = if args.addr.contains("://") {
        args.addr.clone()
    } else {
        format!("http://{}", args.addr)
    };
    let mut client = pb::fulfillment_client::FulfillmentClient::connect(endpoint.clone())
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let response = client
        .quote(request)
        .await
        .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    print!("{}", render(&response));
    Ok(())
}

fn amount(m: &Option<pb::Money>) -> String {
    m.as_ref()
        .map(|m| format!("{} {}", m.amount, m.currency_code))
        .unwrap_or_default()
}

fn objective_name(o: i32) -> &'static str {
    match pb::Objective::try_from(o) {
        Ok(pb::Objective::Fastest) => "fastest",
        Ok(pb::Objective::FewestShipments) => "fewest shipments",
        _ => "cheapest",
    }
}

/// The plan as a table.
pub fn render(r: &pb::QuoteResponse) -> String {
    let mut out = String::new();
    let Some(plan) = &r.plan else {
        return "no plan\n".into();
    };
    let _ = writeln!(
        out,
        "quote {}  objective: {}  proven optimal: {}",
        plan.quote_id,
        objective_name(plan.objective),
        if plan.proven_optimal { "yes" } else { "no" }
    );
    for (i, s) in plan.shipments.iter().enumerate() {
        let origin = s
            .origin
            .as_ref()
            .map(|o| format!("{} {}", o.country_code, o.postal_code))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nshipment {} from {} ({})  {} {}  {} day(s) + {} processing  freight {}",
            i + 1,
            s.supplier_id,
            origin,
            s.carrier,
            s.service,
            s.transit_days,
            s.processing_days,
            amount(&s.freight)
        );
        let _ = writeln!(
            out,
            "  {:<14} {:<16} {:>5} {:>12}  SOURCE",
            "SKU", "SUPPLIER SKU", "QTY", "UNIT COST"
        );
        for l in &s.lines {
            let source = match pb::StockSource::try_from(l.source) {
                Ok(pb::StockSource::Realtime) => "real-time",
                Ok(pb::StockSource::CachedRealtime) => "cached",
                _ => "feed",
            };
            let unit = l
                .unit_cost
                .as_ref()
                .map(|m| m.amount.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<14} {:<16} {:>5} {:>12}  {}",
                l.sku, l.supplier_sku, l.quantity, unit, source
            );
        }
        for p in &s.parcels {
            let _ = writeln!(
                out,
                "  parcel {:<12} {:>8} g  billable {:>8} g  {}x{}x{} mm",
                p.box_id, p.weight_g, p.billable_weight_g, p.length_mm, p.width_mm, p.height_mm
            );
        }
    }
    for u in &plan.unfulfilled {
        let reason = pb::shortfall::Reason::try_from(u.reason)
            .map(|r| r.as_str_name())
            .unwrap_or("REASON_UNSPECIFIED");
        let _ = writeln!(
            out,
            "\nunfulfilled: {} x{} ({reason})",
            u.sku, u.quantity_missing
        );
    }
    let _ = writeln!(
        out,
        "\ngoods {}   freight {}   total {}",
        amount(&plan.goods_total),
        amount(&plan.freight_total),
        amount(&plan.grand_total)
    );
    if let Some(f) = plan
        .freshness
        .filter(|f| f.suppliers_queried + f.suppliers_cached > 0)
    {
        let _ = writeln!(
            out,
            "real-time: {} supplier(s) asked, {} answered, {} timed out, {} failed; {} from cache",
            f.suppliers_queried,
            f.suppliers_answered,
            f.suppliers_timed_out,
            f.suppliers_failed,
            f.suppliers_cached
        );
    }
    for a in &r.alternatives {
        let latest = a
            .shipments
            .iter()
            .map(|s| s.transit_days + s.processing_days)
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "alternative ({}): total {}, {} shipment(s), arrives in {} day(s)",
            objective_name(a.objective),
            amount(&a.grand_total),
            a.shipments.len(),
            latest
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_destinations() {
        let l = parse_line("SR-000001:3").unwrap();
        assert_eq!((l.sku.as_str(), l.quantity), ("SR-000001", 3));
        assert!(parse_line("SR-1").is_err());
        assert!(parse_line("SR-1:x").is_err());
        let a = parse_to("GB:SW1A 1AA", true).unwrap();
        assert_eq!(
            (
                a.country_code.as_str(),
                a.postal_code.as_str(),
                a.residential
            ),
            ("GB", "SW1A 1AA", true)
        );
        assert!(objective("fastest").is_ok() && objective("nope").is_err());
    }
}

//! The self-contained HTML report: tables of every figure and SVG plots
//! drawn with plotters (no scripts, no downloads): latency percentile
//! distribution per RPC, latency over time and throughput over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::driver::PhaseOutcome;
use crate::scenario::Rpc;
use crate::stats::{spectrum, Second, LATENCY_US_MAX};
use crate::summary::{PhaseSummary, Summary};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 420;

/// Series colours, one per RPC in report order.
fn colour(rpc: Rpc) -> RGBColor {
    match rpc {
        Rpc::Health => RGBColor(120, 120, 120),
        Rpc::CheckStock => RGBColor(31, 119, 180),
        Rpc::Quote => RGBColor(214, 39, 40),
        Rpc::Reserve => RGBColor(44, 160, 44),
        Rpc::Commit => RGBColor(148, 103, 189),
        Rpc::Release => RGBColor(255, 127, 14),
        Rpc::Allocate => RGBColor(140, 86, 75),
        Rpc::GetReservation => RGBColor(23, 190, 207),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Per RPC, the corrected and uncorrected histograms of the phases of `kinds`, merged.
fn merged(
    phases: &[(PhaseOutcome, PhaseSummary)],
    kinds: &[&str],
) -> BTreeMap<Rpc, (Histogram<u64>, Histogram<u64>)> {
    let mut out: BTreeMap<Rpc, (Histogram<u64>, Histogram<u64>)> = BTreeMap::new();
    for (o, p) in phases {
        if !kinds.contains(&p.kind.as_str()) {
            continue;
        }
        for (rpc, s) in &o.stats.rpcs {
            let e = out.entry(*rpc).or_insert_with(|| {
                let h = || {
                    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                        .expect("constant histogram bounds are valid")
                };
                (h(), h())
            });
            let _ = e.0.add(&s.corrected);
            let _ = e.1.add(&s.uncorrected);
        }
    }
    out
}

/// x position of a percentile on the 1/(1-p) scale.
fn nines(pct: f64) -> f64 {
    let tail = (1.0 - pct / 100.0).max(1e-7);
    (1.0 / tail).log10()
}

fn percentile_plot(
    hists: &BTreeMap<Rpc, (Histogram<u64>, Histogram<u64>)>,
    title: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut series = Vec::new();
        let mut y_max = 0.01f64;
        let mut x_max = 2.0f64;
        for (rpc, (c, u)) in hists {
            let pts = |h: &Histogram<u64>| -> Vec<(f64, f64)> {
                spectrum(h)
                    .into_iter()
                    .map(|(q, us)| (nines(q), us as f64 / 1000.0))
                    .collect()
            };
            let (pc, pu) = (pts(c), pts(u));
            for (x, y) in pc.iter().chain(&pu) {
                y_max = y_max.max(*y);
                x_max = x_max.max(*x);
            }
            series.push((*rpc, pc, pu));
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max.ceil(), (0.01f64..y_max * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_labels(x_max.ceil() as usize + 1)
            .x_label_formatter(&|x| {
                let p = 100.0 - 100.0 / 10f64.powf(*x);
                if p < 99.0 {
                    format!("{p:.0}%")
                } else {
                    format!("{}%", (p * 1000.0).round() / 1000.0)
                }
            })
            .y_label_formatter(&|y| format!("{y}"))
            .draw()?;
        for (rpc, pc, pu) in series {
            let c = colour(rpc);
            chart
                .draw_series(LineSeries::new(pc, c.stroke_width(2)))?
                .label(format!("{} (corrected)", rpc.name()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(LineSeries::new(pu, c.mix(0.4).stroke_width(1)))?
                .label(format!("{} (uncorrected)", rpc.name()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.mix(0.4)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

fn timeline_plot(
    series: &BTreeMap<Rpc, Vec<Second>>,
    title: &str,
    latency: bool,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let seconds = series.values().map(Vec::len).max().unwrap_or(1).max(2) as f64;
        let y_max = series
            .values()
            .flatten()
            .map(|s| {
                if latency {
                    s.p99_us.max(s.p50_us) as f64 / 1000.0
                } else {
                    (s.answered + s.failed + s.refused) as f64
                }
            })
            .fold(0.0f64, f64::max)
            .max(0.01);
        let mut chart = ChartBuilder::on(&root);
        chart
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        let draw: PlotResult = if latency {
            let mut chart =
                chart.build_cartesian_2d(0f64..seconds, (0.01f64..y_max * 1.5).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("seconds since the run started")
                .y_desc("corrected latency (ms)")
                .y_label_formatter(&|y| format!("{y}"))
                .draw()?;
            for (rpc, v) in series {
                let c = colour(*rpc);
                let pick = |f: fn(&Second) -> u64| -> Vec<(f64, f64)> {
                    v.iter()
                        .enumerate()
                        .filter(|(_, s)| s.answered > 0)
                        .map(|(i, s)| (i as f64 + 0.5, f(s) as f64 / 1000.0))
                        .collect()
                };
                chart
                    .draw_series(LineSeries::new(pick(|s| s.p99_us), c.stroke_width(2)))?
                    .label(format!("{} p99", rpc.name()))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(LineSeries::new(pick(|s| s.p50_us), c.mix(0.4)))?
                    .label(format!("{} p50", rpc.name()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.mix(0.4)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
            Ok(())
        } else {
            let mut chart = chart.build_cartesian_2d(0f64..seconds, 0f64..y_max * 1.1)?;
            chart
                .configure_mesh()
                .x_desc("seconds since the run started")
                .y_desc("calls per second")
                .draw()?;
            for (rpc, v) in series {
                let c = colour(*rpc);
                let pick = |f: fn(&Second) -> u64| -> Vec<(f64, f64)> {
                    v.iter()
                        .enumerate()
                        .map(|(i, s)| (i as f64 + 0.5, f(s) as f64))
                        .collect()
                };
                chart
                    .draw_series(LineSeries::new(pick(|s| s.answered), c.stroke_width(2)))?
                    .label(format!("{} answered", rpc.name()))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                if v.iter().any(|s| s.failed + s.refused > 0) {
                    chart
                        .draw_series(LineSeries::new(pick(|s| s.failed + s.refused), c.mix(0.4)))?
                        .label(format!("{} failed or refused", rpc.name()))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.mix(0.4))
                        });
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
            Ok(())
        };
        draw?;
        root.present()?;
    }
    Ok(svg)
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// Renders the report.
pub fn html(
    summary: &Summary,
    phases: &[(PhaseOutcome, PhaseSummary)],
    timeline: &BTreeMap<Rpc, Vec<Second>>,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>stockroute load test: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}}th{{background:#f3f3f3}}\
         td.l,th.l{{text-align:left}}.ok{{color:#070}}.bad{{color:#b00;font-weight:bold}}</style></head><body>\
         <h1>stockroute load test: {name}</h1><p><code>{cmd}</code></p>",
        name = escape(&summary.scenario),
        cmd = escape(&summary.command)
    );
    let verdict = if summary.passed {
        "<p class=ok>Every check held.</p>"
    } else {
        "<p class=bad>A check failed.</p>"
    };
    h.push_str(verdict);
    h.push_str("<h2>How the figures were taken</h2><ul>");
    for m in &summary.method {
        let _ = write!(h, "<li>{}</li>", escape(m));
    }
    h.push_str("</ul>");

    let check_table = |title: &str, checks: &[crate::invariants::Check], h: &mut String| {
        if checks.is_empty() {
            return;
        }
        let _ = write!(h, "<h2>{title}</h2><table><tr><th class=l>check</th><th>held</th><th class=l>detail</th></tr>");
        for c in checks {
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td class={}>{}</td><td class=l>{}</td></tr>",
                escape(&c.name),
                if c.ok { "ok" } else { "bad" },
                if c.ok { "yes" } else { "no" },
                escape(&c.detail)
            );
        }
        h.push_str("</table>");
    };
    check_table("Goals", &summary.goals, &mut h);
    check_table("Checks", &summary.checks, &mut h);

    if !summary.comparisons.is_empty() {
        h.push_str("<h2>Against the baseline measured in the same run</h2><table><tr><th class=l>figure</th><th>repeat</th><th>value</th><th>baseline</th><th>ratio</th></tr>");
        for c in &summary.comparisons {
            for r in &c.repeats {
                let _ = write!(
                    h,
                    "<tr><td class=l>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.3}</td></tr>",
                    escape(&c.what),
                    r.repeat,
                    r.value,
                    r.baseline,
                    r.ratio
                );
            }
            let _ = write!(
                h,
                "<tr><td class=l><b>{}</b></td><td>median</td><td></td><td></td><td><b>{:.3}</b></td></tr>",
                escape(&c.what),
                c.median_ratio
            );
        }
        h.push_str("</table>");
    }
    for k in &summary.knees {
        let _ = write!(
            h,
            "<h2>Knee: {}</h2><p>Highest rate within the budget: <b>{:.0}/s</b></p><table><tr><th>offered/s</th><th>achieved/s</th><th>p99 ms</th><th>failed %</th><th>within budget</th></tr>",
            escape(&k.load),
            k.sustainable_per_s
        );
        for s in &k.steps {
            let _ = write!(
                h,
                "<tr><td>{:.0}</td><td>{:.0}</td><td>{:.3}</td><td>{:.3}</td><td class={}>{}</td></tr>",
                s.offered_per_s,
                s.achieved_per_s,
                s.p99_ms,
                s.error_pct,
                if s.ok { "ok" } else { "bad" },
                if s.ok { "yes" } else { "no" }
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Plots</h2>");
    let plot = |svg: Result<String, Box<dyn std::error::Error>>, h: &mut String| match svg {
        Ok(s) => {
            h.push_str("<div>");
            h.push_str(&s);
            h.push_str("</div>");
        }
        Err(e) => {
            let _ = write!(
                h,
                "<p class=bad>plot failed: {}</p>",
                escape(&e.to_string())
            );
        }
    };
    let scenario_hists = merged(phases, &["scenario", "baseline", "verify-half"]);
    if !scenario_hists.is_empty() {
        plot(
            percentile_plot(
                &scenario_hists,
                "Latency by percentile (measured phases, repeats merged)",
            ),
            &mut h,
        );
    }
    let knee_hists = merged(phases, &["knee"]);
    if scenario_hists.is_empty() && !knee_hists.is_empty() {
        plot(
            percentile_plot(
                &knee_hists,
                "Latency by percentile (every knee step merged)",
            ),
            &mut h,
        );
    }
    plot(
        timeline_plot(timeline, "Latency over time (per second)", true),
        &mut h,
    );
    plot(
        timeline_plot(timeline, "Throughput over time (per second)", false),
        &mut h,
    );

    h.push_str("<h2>Phases</h2><table><tr><th class=l>phase</th><th>offered/s</th><th>achieved/s</th><th>answered/s</th><th>window s</th><th>server CPU µs/call</th><th>server CPU %</th><th>generator CPU %</th><th class=l>budget</th></tr>");
    for (_, p) in phases {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}–{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l {}\">{}</td></tr>",
            escape(&p.label),
            opt(p.offered_per_s, 0),
            p.achieved_per_s,
            p.goodput_per_s,
            p.window_s.0,
            p.window_s.1,
            opt(p.server_cpu_us_per_call, 1),
            opt(p.server_cpu_pct, 0),
            opt(p.generator_cpu_pct, 0),
            if p.budget_ok { "ok" } else { "bad" },
            if p.budget_ok { "ok".to_owned() } else { escape(&p.budget_notes.join("; ")) }
        );
    }
    h.push_str("</table><h2>Per RPC (ms)</h2><table><tr><th class=l>phase</th><th class=l>RPC</th><th>calls</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>p50 unc.</th><th>p99 unc.</th><th>p99.9 unc.</th><th>server p50 ≤</th><th>server p99 ≤</th><th class=l>outcomes</th></tr>");
    for (_, p) in phases {
        for r in &p.rpcs {
            let server = |f: fn(&crate::summary::ServerLatency) -> f64| {
                r.server
                    .as_ref()
                    .map_or("–".into(), |s| format!("{}", f(s)))
            };
            let codes: Vec<String> = r.codes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td></tr>",
                escape(&p.label),
                escape(&r.rpc),
                r.calls,
                ms(r.corrected.p50_us),
                ms(r.corrected.p90_us),
                ms(r.corrected.p99_us),
                ms(r.corrected.p999_us),
                ms(r.corrected.max_us),
                ms(r.uncorrected.p50_us),
                ms(r.uncorrected.p99_us),
                ms(r.uncorrected.p999_us),
                server(|s| s.p50.le_ms),
                server(|s| s.p99.le_ms),
                escape(&codes.join(", "))
            );
        }
    }
    h.push_str("</table><p>Corrected latency counts from each call's intended start on the schedule; uncorrected from when it was actually sent. Server columns are bucket bounds of the server's own <code>stockroute_grpc_request_seconds</code> histogram over the measured window.</p></body></html>\n");
    h
}

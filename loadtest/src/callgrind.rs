//! Instruction-count gates: each hot-path case of the `instructions` bench
//! binary runs under `valgrind --tool=callgrind`, counting only the
//! instructions executed inside its measured function, and the count per
//! iteration is compared with the committed baseline. Instruction counts do
//! not depend on machine noise, so the tolerance can be small.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The bench binary's measured function; callgrind collects only inside it.
const MEASURED_FN: &str = "*callgrind_measured*";

/// glibc malloc settings for the measured process. The cases' world is set
/// up with threads (feed ingest), so the heap they leave differs from run to
/// run, and with it how often malloc consolidates fast bins and grows or
/// trims the heap inside the count: a 30,000-instruction case moved by 3.2%
/// between runs of one binary, all of it inside malloc. Without fast bins and
/// with trimming and growth steps out of reach the same runs agree within
/// 0.8% at most (most within 0.05%). Small blocks still come from the
/// per-thread cache, as in the server.
const ALLOCATOR_TUNABLES: &str =
    "glibc.malloc.mxfast=0:glibc.malloc.trim_threshold=1000000000:glibc.malloc.top_pad=100000000";

/// Options of `stockroute-loadtest instructions`.
#[derive(Debug, clap::Args)]
pub struct InstructionArgs {
    /// The `instructions` bench binary (cargo bench --bench instructions --no-run prints it).
    #[arg(long)]
    pub bench_bin: PathBuf,
    /// Baseline file (TOML: `[cases]` name = instructions per iteration).
    #[arg(long)]
    pub baseline: PathBuf,
    /// Rewrite the baseline with the measured counts instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Allowed rise over the baseline, percent.
    #[arg(long, default_value_t = 2.0)]
    pub tolerance_pct: f64,
    /// Only these cases (default: every case the binary lists).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
}

/// Instructions per iteration of one case.
fn measure(bin: &Path, case: &str, scratch: &Path) -> anyhow::Result<f64> {
    let out_file = scratch.join(format!("callgrind.{case}.out"));
    let out = Command::new("valgrind")
        .env("GLIBC_TUNABLES", ALLOCATOR_TUNABLES)
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect={MEASURED_FN}"))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(bin)
        .args(["run", case])
        .output()
        .context("cannot run valgrind (is it installed?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "valgrind on case {case} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let iterations: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("iterations "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("case {case} did not print its iterations: {stdout}"))?;
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("cannot read {}", out_file.display()))?;
    let total = total_instructions(&text)
        .with_context(|| format!("no totals line in {}", out_file.display()))?;
    if total == 0 {
        anyhow::bail!("case {case}: callgrind counted nothing inside {MEASURED_FN}");
    }
    Ok(total as f64 / iterations.max(1.0))
}

/// The `totals:` (or `summary:`) line's first event, Ir.
fn total_instructions(callgrind_out: &str) -> Option<u64> {
    callgrind_out
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn read_baseline(path: &Path) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read baseline {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("baseline {} is not TOML", path.display()))?;
    let cases = table
        .get("cases")
        .and_then(|c| c.as_table())
        .with_context(|| format!("baseline {} has no [cases] table", path.display()))?;
    let mut out = BTreeMap::new();
    for (k, v) in cases {
        let n = v
            .as_integer()
            .map(|i| i as f64)
            .or_else(|| v.as_float())
            .with_context(|| format!("baseline {}: case {k} is not a number", path.display()))?;
        out.insert(k.clone(), n);
    }
    Ok(out)
}

fn write_baseline(path: &Path, counts: &BTreeMap<String, f64>) -> anyhow::Result<()> {
    let mut text = String::from(
        "# Instructions per iteration of each hot-path case (callgrind Ir, release build).\n\
         # Compared by scripts/instructions in CI; regenerate with `scripts/instructions --update`\n\
         # after a deliberate change, and say why in the commit.\n[cases]\n",
    );
    for (k, v) in counts {
        text.push_str(&format!("{k} = {}\n", v.round() as u64));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the gates. `Ok(false)` when a case rose beyond the tolerance or is
/// missing from the baseline.
pub fn run(args: &InstructionArgs) -> anyhow::Result<bool> {
    let listed = Command::new(&args.bench_bin)
        .arg("list")
        .output()
        .with_context(|| format!("cannot run {}", args.bench_bin.display()))?;
    if !listed.status.success() {
        anyhow::bail!("{} list failed", args.bench_bin.display());
    }
    let mut cases: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if !args.cases.is_empty() {
        for c in &args.cases {
            if !cases.contains(c) {
                anyhow::bail!("no case {c}; the binary has {}", cases.join(", "));
            }
        }
        cases.retain(|c| args.cases.contains(c));
    }
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let mut counts = BTreeMap::new();
    for case in &cases {
        let n = measure(&args.bench_bin, case, scratch.path())?;
        counts.insert(case.clone(), n);
    }
    if args.update {
        let mut all = if args.baseline.exists() && !args.cases.is_empty() {
            read_baseline(&args.baseline)?
        } else {
            BTreeMap::new()
        };
        all.extend(counts.clone());
        write_baseline(&args.baseline, &all)?;
        for (k, v) in &counts {
            println!("{k:<36} {v:>14.0}");
        }
        println!("wrote {}", args.baseline.display());
        return Ok(true);
    }
    let baseline = read_baseline(&args.baseline)?;
    let mut ok = true;
    println!(
        "{:<36} {:>14} {:>14} {:>9}  (tolerance +{}%)",
        "case", "baseline", "now", "change", args.tolerance_pct
    );
    for (case, now) in &counts {
        match baseline.get(case) {
            None => {
                println!(
                    "{case:<36} {:>14} {now:>14.0} {:>9}  MISSING from the baseline",
                    "–", ""
                );
                ok = false;
            }
            Some(&base) => {
                let change = (now - base) * 100.0 / base.max(1.0);
                let verdict = if change > args.tolerance_pct {
                    ok = false;
                    "REGRESSION"
                } else if change < -args.tolerance_pct {
                    "faster: update the baseline"
                } else {
                    "ok"
                };
                println!("{case:<36} {base:>14.0} {now:>14.0} {change:>+8.2}%  {verdict}");
            }
        }
    }
    for case in baseline.keys().filter(|c| !counts.contains_key(*c)) {
        if args.cases.is_empty() {
            println!("{case:<36} in the baseline but no longer a case");
        }
    }
    println!(
        "{} passed, {} failed",
        counts.len()
            - counts
                .keys()
                .filter(|c| !gate_ok(&baseline, c, counts[*c], args.tolerance_pct))
                .count(),
        counts
            .keys()
            .filter(|c| !gate_ok(&baseline, c, counts[*c], args.tolerance_pct))
            .count()
    );
    Ok(ok)
}

fn gate_ok(baseline: &BTreeMap<String, f64>, case: &str, now: f64, tolerance_pct: f64) -> bool {
    baseline
        .get(case)
        .is_some_and(|&b| (now - b) * 100.0 / b.max(1.0) <= tolerance_pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_callgrind_output() {
        let out = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfl=(1) x\nfn=(1) f\n3 5\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(total_instructions(out), Some(1234));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }

    #[test]
    fn baselines_round_trip_and_gates_allow_the_tolerance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        let counts: BTreeMap<String, f64> =
            [("a".to_owned(), 1000.0), ("b".to_owned(), 20.4)].into();
        write_baseline(&path, &counts).unwrap();
        let back = read_baseline(&path).unwrap();
        assert_eq!(back["a"], 1000.0);
        assert_eq!(back["b"], 20.0);
        assert!(gate_ok(&back, "a", 1019.0, 2.0));
        assert!(!gate_ok(&back, "a", 1021.0, 2.0));
        assert!(gate_ok(&back, "a", 500.0, 2.0));
        assert!(!gate_ok(&back, "c", 1.0, 2.0));
        std::fs::write(&path, "[cases]\na = \"x\"\n").unwrap();
        let err = read_baseline(&path).unwrap_err().to_string();
        assert!(err.contains("case a"), "{err}");
    }
}

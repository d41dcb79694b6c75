"""Renders the stockroute chart with Helm's own engine and checks the result.

Run through scripts/helm-check, which provides the packages. For every values file in
CHART/ci/: render (Helm v4's Go engine via helm-python-sdk), `helm lint --strict`, validate
each manifest strictly against the Kubernetes schemas of the oldest and newest versions the
chart supports, and load the rendered service config with `stockroute check-config`. Values
that must be refused are rendered too, and must fail with the chart's message.
"""

import argparse
import pathlib
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

# The chart's kubeVersion floor, and the newest schemas the validator ships.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]

# Kinds from CRDs, which the Kubernetes schemas do not cover: checked by shape here.
CRD_REQUIRED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["selector", "endpoints"],
}

# Values the chart must refuse, and a phrase its message must hold.
REFUSED = [
    ({"replicaCount": 3, "auth": {"mode": "off"}}, "needs ledger.mode=postgres"),
    ({"autoscaling": {"enabled": True}, "auth": {"mode": "off"}}, "needs ledger.mode=postgres"),
    ({}, "auth.mode=api_keys needs auth.existingSecret"),
    ({"auth": {"mode": "open"}}, "auth.mode must be api_keys or off"),
    ({"auth": {"mode": "off"}, "tls": {"enabled": True}}, "tls.enabled needs tls.existingSecret"),
    (
        {"auth": {"mode": "off"}, "ledger": {"mode": "postgres"}, "replicaCount": 2},
        "needs ledger.postgres.urlSecret.name",
    ),
    (
        {"auth": {"mode": "off"}, "carriers": {"ups": {"enabled": True}}},
        "carriers.ups.enabled needs carriers.ups.secretName",
    ),
]


def fail(message):
    print(f"FAIL {message}", file=sys.stderr)
    return 1


def manifests(rendered):
    """The rendered documents, without NOTES.txt and empty templates."""
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield path, doc


def check_doc(path, doc):
    """Problems with one manifest, as strings."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    name = f"{path}: {kind} {doc.get('metadata', {}).get('name')}"
    if (api, kind) in CRD_REQUIRED:
        spec = doc.get("spec") or {}
        missing = [k for k in CRD_REQUIRED[(api, kind)] if k not in spec]
        return [f"{name}: spec lacks {missing}"] if missing else []
    problems = []
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(str(p) for p in e.path)
            problems.append(f"{name} (Kubernetes {version}): {where}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: no schema for {api} {kind} in Kubernetes {version}")
    return problems


def check_config(bin_path, docs):
    """Loads the rendered service config with the binary's own loader."""
    configs = [
        d["data"]["stockroute.toml"]
        for _, d in docs
        if d.get("kind") == "ConfigMap" and "stockroute.toml" in d.get("data", {})
    ]
    if len(configs) != 1:
        return [f"expected one ConfigMap with stockroute.toml, found {len(configs)}"]
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "stockroute.toml"
        path.write_text(configs[0])
        run = subprocess.run(
            [bin_path, "check-config", "--config", str(path)],
            capture_output=True,
            text=True,
            # Overrides from the environment of CI must not change the verdict.
            env={"PATH": "/usr/bin:/bin"},
        )
    if run.returncode != 0:
        return [f"stockroute check-config refused the rendered config: {run.stderr.strip()}"]
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chart", required=True)
    parser.add_argument("--bin", required=True)
    args = parser.parse_args()
    chart_dir = pathlib.Path(args.chart)
    chart = helm.Chart.load(str(chart_dir))
    failures = 0
    checked = 0

    scenarios = sorted((chart_dir / "ci").glob("*.yaml"))
    if not scenarios:
        return fail(f"no values files in {chart_dir / 'ci'}")
    for scenario in scenarios:
        failures_before = failures
        values = yaml.safe_load(scenario.read_text()) or {}
        label = scenario.name
        report = helm.lint(str(chart_dir), values, strict=True, kube_version="v1.27.0")
        # Severity 3 is an error; strict lint turns warnings into errors too.
        lint_errors = [m for m in report["messages"] if m["severity"] >= 2] + [
            {"path": "-", "error": e} for e in report.get("errors", [])
        ]
        for m in lint_errors:
            failures += fail(f"{label}: helm lint: {m['path']}: {m['error']}")
        try:
            rendered = chart.render(values, name="stockroute", namespace="shop", is_install=True)
        except helm.HelmError as e:
            failures += fail(f"{label}: render: {e}")
            continue
        docs = list(manifests(rendered))
        kinds = sorted({d["kind"] for _, d in docs})
        for path, doc in docs:
            for problem in check_doc(path, doc):
                failures += fail(f"{label}: {problem}")
        for problem in check_config(args.bin, docs):
            failures += fail(f"{label}: {problem}")
        checked += len(docs)
        verdict = "ok  " if failures == failures_before else "FAIL"
        print(f"{verdict} {label}: {len(docs)} manifests ({', '.join(kinds)})")

    for values, phrase in REFUSED:
        try:
            chart.render(values, name="stockroute", namespace="shop", is_install=True)
            failures += fail(f"values {values} rendered, but must be refused ({phrase})")
        except helm.HelmError as e:
            if phrase not in str(e):
                failures += fail(f"values {values} refused with `{e}`, expected `{phrase}`")
    print(f"ok   {len(REFUSED)} invalid value sets refused with their message")

    if failures:
        print(f"{checked} manifests checked, {failures} failed", file=sys.stderr)
        return 1
    print(f"{checked} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

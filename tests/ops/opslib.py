"""Shared by tests/ops and tests/integration/e2e: the repository's ops files, the tools that check them,
and the metric names they use. A module of its own name so that both test trees can import it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULES = ALERTS / "ztmon.rules.yml"
RULE_TESTS = ALERTS / "tests" / "ztmon.rules.test.yml"
RUNBOOK = ALERTS / "runbook.md"
AM_EXAMPLE = ALERTS / "alertmanager.example.yml"
DASHBOARDS = ROOT / "dashboards"
CHART = ROOT / "deploy" / "helm" / "ztmon"
MANIFESTS = ROOT / "deploy" / "manifests"
DOCS = ROOT / "docs"
VENV_BIN = Path(sys.executable).parent

# Metrics a rule or panel may use that ztmon's own documentation does not list: Prometheus' `up`, and
# client_python's process collector (ztmon serves it with its own metrics; checked in the live scrape).
NOT_ZTMON_METRICS = frozenset({"up", "process_resident_memory_bytes", "process_cpu_seconds_total"})
_METRIC = re.compile(r"\b(ztmon_[a-z0-9_]+|up|process_[a-z0-9_]+)\b")


def tool(name: str, *, env: str | None = None) -> str:
    """Path of a tool scripts/test.sh installs; a missing one fails the test (never a silent skip)."""
    candidates = [os.environ.get(env, "")] if env else []
    candidates += [str(VENV_BIN / name), shutil.which(name) or "", str(ROOT / ".tools" / name / name)]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(Path(c).resolve())
    pytest.fail(f"{name} is not installed; scripts/test.sh installs it", pytrace=False)


def run(cmd: list[str], *, timeout: float = 120, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def ops_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(ALERTS / "config.yaml")
    return config


# -- metric names ---------------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (ztmon_*, up, process_*), label names excluded."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_labels = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_strings)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_labels)
    return {m.group(1) for m in _METRIC.finditer(without_matchers)}


def documented_metrics() -> tuple[set[str], list[Path]]:
    """Metric names in docs/metrics.md plus docs/pending/*-metrics.md (other issues' metrics not yet merged).

    A missing docs/metrics.md is a failure: nothing could then prove that a rule or panel uses a real metric.
    """
    main = DOCS / "metrics.md"
    if not main.is_file():
        pytest.fail(f"{main.relative_to(ROOT)} is missing: the metric cross-check has nothing to check against")
    files = [main, *sorted((DOCS / "pending").glob("*-metrics.md"))]
    names: set[str] = set()
    for f in files:
        text = f.read_text(encoding="utf-8")
        names |= set(re.findall(r"\bztmon_[a-z0-9_]+\b", text))
    # A documented counter `x_total` may be written as `x` in the prose, and vice versa.
    names |= {n + "_total" for n in names if not n.endswith("_total")}
    return names, files


# -- alert rules ----------------------------------------------------------------------------------


def rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [r for g in load_yaml(path)["groups"] for r in g["rules"]]


def alert_names() -> list[str]:
    return [r["alert"] for r in rules() if "alert" in r]


# -- dashboards -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # file name
    panel: str  # title
    ref: str
    expr: str
    instant: bool

    @property
    def key(self) -> str:
        return f"{self.dashboard}: {self.panel} [{self.ref}]"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in model["panels"]:
        if p["type"] == "row":
            yield from p.get("panels", [])
        else:
            yield p


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, p["title"], t["refId"], t["expr"], bool(t.get("instant")))
        for name, model in dashboards().items()
        for p in panels(model)
        for t in p.get("targets", [])
    ]


# Grafana substitutes these before a query reaches Prometheus. "All" is `.*` for every variable.
GRAFANA_VARIABLES = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "1m",
    "$cluster": ".*",
    "$node": ".*",
    "$namespace": ".*",
}


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    for k, v in {**GRAFANA_VARIABLES, **(values or {})}.items():
        expr = expr.replace(k, v)
    return expr

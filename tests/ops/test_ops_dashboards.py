"""dashboards/: generated from code, committed as JSON; every query parses and uses documented metrics."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from opslib import (
    CHART,
    DASHBOARDS,
    NOT_ZTMON_METRICS,
    ROOT,
    dashboards,
    documented_metrics,
    metric_names,
    ops_config,
    panel_queries,
    panels,
    run,
    substitute,
)

BOARDS = dashboards()
REQUIRED_VARIABLES = ["datasource", "cluster", "node", "namespace"]


def test_committed_json_is_what_the_generator_writes() -> None:
    proc = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_the_three_dashboards_exist_and_the_chart_carries_them() -> None:
    titles = {m["title"] for m in BOARDS.values()}
    assert titles == {"ztmon / Overview", "ztmon / Workloads", "ztmon / Agent health"}
    for name in BOARDS:
        assert (CHART / "files" / "dashboards" / name).read_text() == (DASHBOARDS / name).read_text()


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_has_the_standard_variables(name: str) -> None:
    model = BOARDS[name]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert list(variables) == REQUIRED_VARIABLES
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for v in ("cluster", "node", "namespace"):
        assert variables[v]["includeAll"] is True
        assert variables[v]["allValue"] == ".*", "All must match a missing label (a plain Docker host)"
        assert variables[v]["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_uses_the_datasource_variable_and_fits_the_grid(name: str) -> None:
    model = BOARDS[name]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    titles = Counter(p["title"] for p in panels(model))
    assert not [t for t, n in titles.items() if n > 1], f"duplicate panel titles: {titles}"
    for p in panels(model):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        assert p["description"], f"{p['title']}: every panel says what it shows"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"


def test_every_query_filters_by_job_cluster_and_node() -> None:
    selector = ops_config()["selector"]
    for q in panel_queries():
        for needle in (selector, 'cluster=~"$cluster"', 'node=~"$node"'):
            assert needle in q.expr, f"{q.key}: {needle} missing in {q.expr}"


def test_variable_queries_use_the_job_selector() -> None:
    selector = ops_config()["selector"]
    for model in BOARDS.values():
        for v in model["templating"]["list"][1:]:
            assert selector in v["query"]["query"]


def test_panel_queries_use_only_documented_metrics() -> None:
    documented, files = documented_metrics()
    used = {m for q in panel_queries() for m in metric_names(q.expr)} - NOT_ZTMON_METRICS
    missing = sorted(used - documented)
    assert not missing, f"panels use metrics not documented in {[str(f.relative_to(ROOT)) for f in files]}: {missing}"


def test_every_panel_query_parses(promtool: str, tmp_path: Path) -> None:
    """promtool 2.42 has no `promql format`: a recording rule per query makes `check rules` parse them all.

    The live Prometheus of tests/integration/e2e then runs each of them against real data.
    """
    queries = panel_queries()
    group: dict[str, Any] = {
        "name": "dashboard-queries",
        "rules": [{"record": f"panel:q{i}", "expr": substitute(q.expr)} for i, q in enumerate(queries)],
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    out = run([promtool, "check", "rules", str(path)]).stdout
    assert f"SUCCESS: {len(queries)} rules found" in out


def test_variable_values_are_label_values_queries() -> None:
    for model in BOARDS.values():
        for v in model["templating"]["list"][1:]:
            q = v["query"]["query"]
            assert q.startswith("label_values("), q
            assert q.endswith(f", {v['name']})"), q

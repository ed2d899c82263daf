"""Write ztmon's Grafana dashboards as JSON, from plain Python data.

    .venv/bin/python dashboards/generate.py            # rewrite dashboards/*.json and the chart's copies
    .venv/bin/python dashboards/generate.py --check    # exit 1 if a committed file differs (tests/ops does this)

Plain dicts rather than grafana-foundation-sdk: the JSON model is small and stable (schemaVersion 39), the
output is deterministic, and there is no dependency to pin. Every dashboard has the `$datasource`,
`$cluster`, `$node` and `$namespace` variables. `cluster` and `node` are target labels set by the scrape
configuration (the chart's ServiceMonitor sets `node`; `cluster` usually comes from Prometheus' external
labels); each variable's "All" is `.*`, which also matches a missing label, so the dashboards work on a
single Docker host too. The job selector and thresholds come from alerts/config.yaml, as the alerts' do.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "alerts" / "config.yaml"
OUT_DIRS = (ROOT / "dashboards", ROOT / "deploy" / "helm" / "ztmon" / "files" / "dashboards")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
DAY = 86400


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return config


# -- panels -------------------------------------------------------------------------------------------


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False  # tables, stats and bar gauges show the current value

    def render(self, ref: str, *, table: bool) -> dict[str, Any]:
        """Tables get one row per series (format table); other panels one series per label set."""
        out: dict[str, Any] = {"datasource": DATASOURCE, "refId": ref, "expr": self.expr}
        if self.instant:
            out |= {"instant": True, "range": False}
        else:
            out |= {"instant": False, "range": True}
        if table:
            out["format"] = "table"
        else:
            out |= {"format": "time_series", "legendFormat": self.legend or "__auto"}
        return out


@dataclass
class Panel:
    kind: str  # timeseries | stat | table | bargauge | piechart | gauge
    title: str
    description: str
    targets: list[Target]
    w: int = 12
    h: int = 8
    unit: str = "short"
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    mappings: list[dict[str, Any]] = field(default_factory=list)
    hide_columns: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    stack: bool = False

    def render(self, pid: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "unit": self.unit,
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": color, "value": value} for value, color in self.thresholds],
            },
            "mappings": self.mappings,
        }
        if self.kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 20 if self.stack else 0,
                "stacking": {"mode": "normal" if self.stack else "none", "group": "A"},
                "showPoints": "never",
            }
            defaults["color"] = {"mode": "palette-classic"}
        elif self.kind == "table":
            defaults["custom"] = {"align": "auto", "cellOptions": {"type": "color-text"}}
            defaults["color"] = {"mode": "thresholds"}
        else:
            defaults["color"] = {"mode": "thresholds"}
        options = {
            "timeseries": {"legend": {"displayMode": "table", "placement": "right", "showLegend": True}},
            "stat": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background",
                "graphMode": "none",
                "textMode": "value",
            },
            "gauge": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
            "bargauge": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "basic",
            },
            "piechart": {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "legend": {"displayMode": "table", "placement": "right", "showLegend": True},
                "pieType": "donut",
            },
            "table": {"showHeader": True, "cellHeight": "sm"},
        }[self.kind] | self.options
        panel: dict[str, Any] = {
            "id": pid,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.h, "w": self.w, "x": x, "y": y},
            "targets": [t.render(chr(ord("A") + i), table=self.kind == "table") for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
        }
        if self.kind == "table":
            hidden = {"Time": True, "__name__": True, "job": True, **dict.fromkeys(self.hide_columns, True)}
            panel["transformations"] = [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": hidden, "indexByName": {}, "renameByName": {}}},
            ]
        return panel


@dataclass
class Row:
    title: str
    panels: list[Panel]


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[Row]

    def render(self, selector: str) -> dict[str, Any]:
        panels: list[dict[str, Any]] = []
        pid, y = 1, 0
        for row in self.rows:
            panels.append(
                {
                    "id": pid,
                    "type": "row",
                    "title": row.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                }
            )
            pid, y, x, row_h = pid + 1, y + 1, 0, 0
            for p in row.panels:
                if x + p.w > 24:
                    x, y, row_h = 0, y + row_h, 0
                panels.append(p.render(pid, x, y))
                pid, x, row_h = pid + 1, x + p.w, max(row_h, p.h)
            y += row_h
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["ztmon", "security"],
            "editable": True,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": "now-6h", "to": "now"},
            "timezone": "",
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "version": 1,
            "annotations": {"list": []},
            "links": [
                {
                    "title": "ztmon",
                    "type": "dashboards",
                    "tags": ["ztmon"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "templating": {"list": variables(selector)},
            "panels": panels,
        }


def _query_var(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-var", "qryType": 1},
        "refresh": 2,  # on time range change: a node that joined shows up
        "includeAll": True,
        "allValue": ".*",  # matches a missing label too (a single Docker host has neither cluster nor node)
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def variables(selector: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "options": [],
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
        },
        _query_var("cluster", "Cluster", f"label_values(ztmon_build_info{{{selector}}}, cluster)"),
        _query_var("node", "Node", f'label_values(ztmon_build_info{{{selector}, cluster=~"$cluster"}}, node)'),
        _query_var(
            "namespace",
            "Namespace",
            f'label_values(ztmon_finding_info{{{selector}, cluster=~"$cluster", node=~"$node"}}, namespace)',
        ),
    ]


# -- the dashboards -----------------------------------------------------------------------------------

SEVERITY_COLORS = {"critical": "dark-red", "high": "red", "medium": "orange", "low": "yellow", "info": "blue"}
ROOTFS_MAP = [
    {
        "type": "value",
        "options": {
            "0": {"text": "writable", "color": "orange", "index": 0},
            "1": {"text": "read-only", "color": "green", "index": 1},
        },
    }
]
UP_MAP = [
    {
        "type": "value",
        "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "1": {"text": "up", "color": "green", "index": 1},
        },
    }
]
FINDING_COLUMNS_HIDDEN = ("Value", "container_id", "instance")


def overview(s: str, ns: str, cfg: dict[str, Any]) -> Dashboard:
    stale = int(cfg["thresholds"]["data_stale_seconds"])
    red_above_zero = [(None, "green"), (1, "red")]
    return Dashboard(
        "ztmon-overview",
        "ztmon / Overview",
        "Runtime posture at a glance: open findings by check and severity, where they are, and which nodes "
        "report stale data.",
        [
            Row(
                "Posture",
                [
                    Panel(
                        "stat",
                        "Open findings",
                        "Open (not suppressed) findings in the selection.",
                        [Target(f"count(ztmon_finding_info{{{ns}}}) or vector(0)", instant=True)],
                        w=4,
                        h=4,
                        thresholds=[(None, "green"), (1, "orange")],
                    ),
                    Panel(
                        "stat",
                        "Critical",
                        "Open critical findings (a privileged container, a host root mount).",
                        [Target(f'count(ztmon_finding_info{{{ns}, severity="critical"}}) or vector(0)', instant=True)],
                        w=4,
                        h=4,
                        thresholds=red_above_zero,
                    ),
                    Panel(
                        "stat",
                        "High",
                        "Open high-severity findings.",
                        [Target(f'count(ztmon_finding_info{{{ns}, severity="high"}}) or vector(0)', instant=True)],
                        w=4,
                        h=4,
                        thresholds=red_above_zero,
                    ),
                    Panel(
                        "stat",
                        "Suppressed",
                        "Findings accepted with a reason (label, annotation or configuration); all namespaces.",
                        [Target(f"sum(ztmon_findings_suppressed{{{s}}}) or vector(0)", instant=True)],
                        w=4,
                        h=4,
                        thresholds=[(None, "blue")],
                    ),
                    Panel(
                        "stat",
                        "Agents reporting",
                        "ztmon agents whose metrics Prometheus has now.",
                        [Target(f"count(ztmon_build_info{{{s}}}) or vector(0)", instant=True)],
                        w=4,
                        h=4,
                        thresholds=[(None, "red"), (1, "green")],
                    ),
                    Panel(
                        "stat",
                        "Nodes with stale data",
                        f"Agents with a source whose last success is older than {stale} s (ZtmonDataStale), "
                        "or that cannot be scraped (ZtmonNodeAgentDown).",
                        [
                            Target(
                                f"count(count by (instance) (time() - ztmon_source_last_success_timestamp_seconds"
                                f"{{{s}}} > {stale} or up{{{s}}} == 0)) or vector(0)",
                                instant=True,
                            )
                        ],
                        w=4,
                        h=4,
                        thresholds=red_above_zero,
                    ),
                    Panel(
                        "timeseries",
                        "Open findings by check and severity",
                        "Open findings over time, one line per check and severity.",
                        [
                            Target(
                                f"count by (check, severity) (ztmon_finding_info{{{ns}}})", "{{check}} / {{severity}}"
                            )
                        ],
                        w=24,
                        h=9,
                        stack=True,
                    ),
                ],
            ),
            Row(
                "Where",
                [
                    Panel(
                        "bargauge",
                        "Top namespaces",
                        "Namespaces with the most open findings (empty = Docker containers outside Kubernetes).",
                        [
                            Target(
                                f"topk(10, count by (namespace) (ztmon_finding_info{{{ns}}}))",
                                "namespace {{namespace}}",
                                instant=True,
                            )
                        ],
                        w=8,
                        h=9,
                        thresholds=[(None, "orange")],
                    ),
                    Panel(
                        "table",
                        "Top workloads",
                        "Workloads (pod and container) with the most open findings.",
                        [
                            Target(
                                f"topk(15, count by (namespace, pod, container) (ztmon_finding_info{{{ns}}}))",
                                instant=True,
                            )
                        ],
                        w=16,
                        h=9,
                        thresholds=[(None, "orange")],
                        options={"sortBy": [{"displayName": "Value", "desc": True}]},
                    ),
                    Panel(
                        "table",
                        "Data age by node and source",
                        f"Seconds since each source's last success; red above {stale} s (ZtmonDataStale).",
                        [
                            Target(
                                f"max by (cluster, node, instance, source) (time() - "
                                f"ztmon_source_last_success_timestamp_seconds{{{s}}})",
                                instant=True,
                            )
                        ],
                        w=12,
                        h=8,
                        unit="s",
                        thresholds=[(None, "green"), (stale, "red")],
                        options={"sortBy": [{"displayName": "Value", "desc": True}]},
                    ),
                    Panel(
                        "table",
                        "Suppressed findings by check",
                        "Accepted findings stay visible here: review their reasons and expiry dates.",
                        [Target(f"sum by (check) (ztmon_findings_suppressed{{{s}}}) > 0", instant=True)],
                        w=12,
                        h=8,
                        thresholds=[(None, "blue")],
                    ),
                ],
            ),
            Row(
                "Findings",
                [
                    Panel(
                        "table",
                        "Every open finding",
                        "Every open finding; its id is the key of GET /findings.",
                        [Target(f"ztmon_finding_info{{{ns}}}", instant=True)],
                        w=24,
                        h=10,
                        hide_columns=FINDING_COLUMNS_HIDDEN,
                        options={"sortBy": [{"displayName": "severity", "desc": False}]},
                    ),
                ],
            ),
        ],
    )


def workloads(s: str, ns: str, cfg: dict[str, Any]) -> Dashboard:
    warn = int(cfg["thresholds"]["certificate_expiry_warning_days"]) * DAY
    return Dashboard(
        "ztmon-workloads",
        "ztmon / Workloads",
        "Per namespace and workload: read-only root filesystems, privileged containers, listeners and their "
        "TLS status, secret ages, certificate expiry and drift.",
        [
            Row(
                "Containers",
                [
                    Panel(
                        "stat",
                        "Writable root filesystems",
                        "Containers whose root filesystem is writable.",
                        [Target(f"count(ztmon_container_readonly_rootfs{{{ns}}} == 0) or vector(0)", instant=True)],
                        w=6,
                        h=5,
                        thresholds=[(None, "green"), (1, "orange")],
                    ),
                    Panel(
                        "gauge",
                        "Read-only share",
                        "Share of containers with a read-only root filesystem.",
                        [
                            Target(
                                f"sum(ztmon_container_readonly_rootfs{{{ns}}}) / "
                                f"count(ztmon_container_readonly_rootfs{{{ns}}})",
                                instant=True,
                            )
                        ],
                        w=6,
                        h=5,
                        unit="percentunit",
                        thresholds=[(None, "red"), (0.5, "orange"), (0.9, "green")],
                        options={"minVizValue": 0, "maxVizValue": 1},
                    ),
                    Panel(
                        "stat",
                        "Privileged",
                        "Open `privileged` findings.",
                        [Target(f'count(ztmon_finding_info{{{ns}, check="privileged"}}) or vector(0)', instant=True)],
                        w=6,
                        h=5,
                        thresholds=[(None, "green"), (1, "red")],
                    ),
                    Panel(
                        "stat",
                        "Containers",
                        "Containers seen by the runtime sources.",
                        [Target(f"sum(ztmon_containers{{{s}}})", instant=True)],
                        w=6,
                        h=5,
                        thresholds=[(None, "blue")],
                    ),
                    Panel(
                        "table",
                        "Root filesystem per container",
                        "Read-only or writable, per container.",
                        [Target(f"ztmon_container_readonly_rootfs{{{ns}}}", instant=True)],
                        w=12,
                        h=9,
                        mappings=ROOTFS_MAP,
                        hide_columns=("container_id", "instance"),
                        options={"sortBy": [{"displayName": "Value", "desc": False}]},
                    ),
                    Panel(
                        "table",
                        "Privileged containers",
                        "Containers running privileged: every capability and host device.",
                        [Target(f'ztmon_finding_info{{{ns}, check="privileged"}}', instant=True)],
                        w=12,
                        h=9,
                        hide_columns=FINDING_COLUMNS_HIDDEN,
                    ),
                    Panel(
                        "table",
                        "Findings per workload and check",
                        "Open findings counted per workload.",
                        [
                            Target(
                                f"count by (namespace, pod, container, check, severity) (ztmon_finding_info{{{ns}}})",
                                instant=True,
                            )
                        ],
                        w=24,
                        h=9,
                        options={"sortBy": [{"displayName": "namespace", "desc": False}]},
                    ),
                ],
            ),
            Row(
                "Network",
                [
                    Panel(
                        "piechart",
                        "Listeners by TLS status",
                        "Listening sockets by what the TLS probe saw: tls, plaintext or unknown.",
                        [Target(f"count by (tls) (ztmon_listener_info{{{ns}}})", "{{tls}}", instant=True)],
                        w=8,
                        h=9,
                    ),
                    Panel(
                        "table",
                        "Listeners",
                        "Every listening socket ztmon saw, with its TLS status.",
                        [Target(f"ztmon_listener_info{{{ns}}}", instant=True)],
                        w=16,
                        h=9,
                        hide_columns=("Value", "instance"),
                    ),
                    Panel(
                        "table",
                        "Plaintext and unexpected listeners",
                        "Open `plaintext`, `open-port` and `host-port` findings.",
                        [Target(f'ztmon_finding_info{{{ns}, check=~"plaintext|open-port|host-port"}}', instant=True)],
                        w=24,
                        h=8,
                        hide_columns=FINDING_COLUMNS_HIDDEN,
                    ),
                    Panel(
                        "table",
                        "Pods without a NetworkPolicy",
                        "Pods no NetworkPolicy selects, per namespace.",
                        [Target(f"ztmon_pods_unsegmented{{{ns}}} > 0", instant=True)],
                        w=24,
                        h=7,
                        thresholds=[(None, "orange")],
                        hide_columns=("instance",),
                    ),
                ],
            ),
            Row(
                "Secrets and certificates",
                [
                    Panel(
                        "table",
                        "Secret age",
                        "Time since each Secret last changed (oldest first).",
                        [Target(f"time() - ztmon_secret_last_changed_timestamp_seconds{{{ns}}}", instant=True)],
                        w=12,
                        h=9,
                        unit="s",
                        thresholds=[(None, "green"), (90 * DAY, "orange")],
                        hide_columns=("instance",),
                        options={"sortBy": [{"displayName": "Value", "desc": True}]},
                    ),
                    Panel(
                        "table",
                        "Certificate expiry",
                        f"Time left before notAfter; orange below "
                        f"{warn // DAY} days (ZtmonCertificateExpiringSoon), red when expired.",
                        [Target(f"ztmon_certificate_not_after_timestamp_seconds{{{ns}}} - time()", instant=True)],
                        w=12,
                        h=9,
                        unit="s",
                        thresholds=[(None, "red"), (0, "orange"), (warn, "green")],
                        hide_columns=("instance",),
                        options={"sortBy": [{"displayName": "Value", "desc": False}]},
                    ),
                ],
            ),
            Row(
                "Drift",
                [
                    Panel(
                        "table",
                        "Drift findings",
                        "Workloads that no longer match their baseline: image, files, ports, configuration, node.",
                        [Target(f'ztmon_finding_info{{{ns}, check=~"drift-.*"}}', instant=True)],
                        w=24,
                        h=8,
                        hide_columns=FINDING_COLUMNS_HIDDEN,
                    ),
                ],
            ),
        ],
    )


def agent_health(s: str, cfg: dict[str, Any]) -> Dashboard:
    stale = int(cfg["thresholds"]["data_stale_seconds"])
    backlog = int(cfg["thresholds"]["mqtt_outbox_backlog_events"])
    return Dashboard(
        "ztmon-agent",
        "ztmon / Agent health",
        "Is ztmon itself working: targets and sources up, scan and check durations, check errors, watch "
        "restarts, the MQTT outbox, and the agents' own footprint.",
        [
            Row(
                "Agents and sources",
                [
                    Panel(
                        "stat",
                        "Targets down",
                        "ztmon targets Prometheus cannot scrape (ZtmonNodeAgentDown).",
                        [Target(f"count(up{{{s}}} == 0) or vector(0)", instant=True)],
                        w=6,
                        h=4,
                        thresholds=[(None, "green"), (1, "red")],
                    ),
                    Panel(
                        "stat",
                        "Agents ready",
                        "Agents whose first complete scan has finished.",
                        [Target(f"sum(ztmon_ready{{{s}}})", instant=True)],
                        w=6,
                        h=4,
                        thresholds=[(None, "red"), (1, "green")],
                    ),
                    Panel(
                        "stat",
                        "Sources down",
                        "Sources whose last refresh or watch failed (ZtmonSourceDown).",
                        [Target(f"count(ztmon_source_up{{{s}}} == 0) or vector(0)", instant=True)],
                        w=6,
                        h=4,
                        thresholds=[(None, "green"), (1, "red")],
                    ),
                    Panel(
                        "stat",
                        "Versions",
                        "ztmon versions running.",
                        [Target(f"count by (version) (ztmon_build_info{{{s}}})", "{{version}}", instant=True)],
                        w=6,
                        h=4,
                        thresholds=[(None, "blue")],
                        options={"textMode": "value_and_name"},
                    ),
                    Panel(
                        "table",
                        "Sources",
                        "Each source's state per agent.",
                        [Target(f"ztmon_source_up{{{s}}}", instant=True)],
                        w=12,
                        h=8,
                        mappings=UP_MAP,
                        thresholds=[(None, "red"), (1, "green")],
                    ),
                    Panel(
                        "timeseries",
                        "Data age by source",
                        f"Seconds since each source's last success; ZtmonDataStale above {stale} s.",
                        [Target(f"time() - ztmon_source_last_success_timestamp_seconds{{{s}}}", "{{node}} {{source}}")],
                        w=12,
                        h=8,
                        unit="s",
                        thresholds=[(None, "green"), (stale, "red")],
                    ),
                    Panel(
                        "timeseries",
                        "Scan duration by source",
                        "Duration of each source's last full refresh.",
                        [Target(f"max by (node, source) (ztmon_scan_duration_seconds{{{s}}})", "{{node}} {{source}}")],
                        w=12,
                        h=8,
                        unit="s",
                    ),
                    Panel(
                        "timeseries",
                        "Time since last cycle",
                        "Age of the snapshot the current report was built from.",
                        [Target(f"time() - ztmon_last_cycle_timestamp_seconds{{{s}}}", "{{node}}")],
                        w=12,
                        h=8,
                        unit="s",
                    ),
                ],
            ),
            Row(
                "Checks",
                [
                    Panel(
                        "timeseries",
                        "Check duration",
                        "Duration of each check in the last cycle (slowest agent).",
                        [Target(f"max by (check) (ztmon_check_duration_seconds{{{s}}})", "{{check}}")],
                        w=12,
                        h=8,
                        unit="s",
                    ),
                    Panel(
                        "timeseries",
                        "Check errors",
                        "Checks that raised (ZtmonCheckFailing).",
                        [
                            Target(
                                f"sum by (check) (increase(ztmon_check_errors_total{{{s}}}[$__rate_interval]))",
                                "{{check}}",
                            )
                        ],
                        w=12,
                        h=8,
                    ),
                    Panel(
                        "timeseries",
                        "Cycles per second",
                        "Check cycles run, per agent (one per change burst or resync).",
                        [
                            Target(
                                f"sum by (node, instance) (rate(ztmon_cycles_total{{{s}}}[$__rate_interval]))",
                                "{{node}} {{instance}}",
                            )
                        ],
                        w=12,
                        h=8,
                        unit="ops",
                    ),
                    Panel(
                        "timeseries",
                        "Watch restarts",
                        "Kubernetes watches restarted (expired, 410 Gone, "
                        "errors): frequent restarts mean an unhealthy API path.",
                        [
                            Target(
                                f"sum without (job, cluster) (increase(ztmon_watch_restarts_total{{{s}}}"
                                "[$__rate_interval]))",
                                "",
                            )
                        ],
                        w=12,
                        h=8,
                    ),
                ],
            ),
            Row(
                "Sinks and MQTT",
                [
                    Panel(
                        "table",
                        "Sinks",
                        "Each sink's state per agent (ZtmonSinkDown).",
                        [Target(f"ztmon_sink_up{{{s}}}", instant=True)],
                        w=8,
                        h=8,
                        mappings=UP_MAP,
                        thresholds=[(None, "red"), (1, "green")],
                    ),
                    Panel(
                        "timeseries",
                        "MQTT connected",
                        "1 while the MQTT client is connected to the broker.",
                        [Target(f"ztmon_mqtt_connected{{{s}}}", "{{node}}")],
                        w=8,
                        h=8,
                    ),
                    Panel(
                        "timeseries",
                        "MQTT outbox",
                        f"Events waiting for the broker; ZtmonMqttOutboxBacklog above {backlog}.",
                        [
                            Target(f"ztmon_mqtt_outbox_events{{{s}}}", "{{node}} waiting"),
                            Target(
                                f"increase(ztmon_mqtt_outbox_dropped_total{{{s}}}[$__rate_interval])",
                                "{{node}} dropped",
                            ),
                        ],
                        w=8,
                        h=8,
                        thresholds=[(None, "green"), (backlog, "red")],
                    ),
                ],
            ),
            Row(
                "Footprint",
                [
                    Panel(
                        "timeseries",
                        "Resident memory",
                        "Resident memory of each agent.",
                        [Target(f"process_resident_memory_bytes{{{s}}}", "{{node}} {{instance}}")],
                        w=12,
                        h=8,
                        unit="bytes",
                    ),
                    Panel(
                        "timeseries",
                        "CPU",
                        "CPU used by each agent, in cores.",
                        [Target(f"rate(process_cpu_seconds_total{{{s}}}[$__rate_interval])", "{{node}} {{instance}}")],
                        w=12,
                        h=8,
                        unit="short",
                    ),
                ],
            ),
        ],
    )


def build(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    s = f'{config["selector"]}, cluster=~"$cluster", node=~"$node"'
    ns = f'{s}, namespace=~"$namespace"'
    boards = (overview(s, ns, config), workloads(s, ns, config), agent_health(s, config))
    return {f"{b.uid}.json": b.render(config["selector"]) for b in boards}


def render(config: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(model, indent=2, sort_keys=False) + "\n" for name, model in build(config).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed output differs")
    args = parser.parse_args(argv)
    files = render(load_config())
    stale = []
    for out in OUT_DIRS:
        stale += [
            (out / n, text)
            for n, text in files.items()
            if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != text
        ]
        stale += [(p, None) for p in out.glob("ztmon-*.json") if p.name not in files]
    if args.check:
        for p, _ in stale:
            print(
                f"{p.relative_to(ROOT)} is not what dashboards/generate.py writes: run it and commit", file=sys.stderr
            )
        return 1 if stale else 0
    for p, text in stale:
        if text is None:
            p.unlink()
            print(f"removed {p.relative_to(ROOT)}")
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
            print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

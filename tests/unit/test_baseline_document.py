"""The baseline document: a valid one loads, every problem is one exact `file:line: field: message` line,
and what is saved loads back unchanged (atomically written)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ztmon.engine import baselines
from ztmon.model.baseline import (
    Baseline,
    ContainerBaseline,
    FilesystemBaseline,
    ImageBaseline,
    ListenerBaseline,
    Metadata,
    NodeBaseline,
    SecurityBaseline,
    WorkloadBaseline,
    WorkloadKey,
)

DIGEST = "sha256:" + "ab" * 32

VALID = f"""\
version: 1
metadata:
  description: shop on node-1
nodes:
  - name: "node-*"
    kernel: "6.1.0-*"
    runtime_version: docker://20.10.24
workloads:
  - namespace: shop
    workload: web
    listeners:
      - {{port: 8080, protocol: tcp, tls: true, scope: all}}
    containers:
      - name: web
        images:
          - reference: registry.example.com/web:1.4
            digests: ["{DIGEST}"]
        security:
          privileged: false
          cap_add: [cap_net_bind_service]
          host_mounts: ["/var/log/web:/logs:rw"]
        filesystem:
          allowed_paths: [/tmp, /var/cache/nginx]
  - workload: standalone
"""


def load(tmp_path: Path, text: str) -> Baseline:
    path = tmp_path / "baseline.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return baselines.load_document(path).baseline


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "baseline.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(baselines.BaselineError) as e:
        baselines.load_document(path)
    return [line.replace(str(path), "F") for line in e.value.errors]


def test_valid_document_loads_into_value_types(tmp_path: Path) -> None:
    b = load(tmp_path, VALID)
    web = b.workload(WorkloadKey("shop", "web"))
    assert web is not None
    assert web.listeners == (ListenerBaseline(port=8080, protocol="tcp", tls=True, scope="all"),)
    c = web.container("web")
    assert c is not None
    assert c.images == (ImageBaseline("registry.example.com/web:1.4", (DIGEST,)),)
    assert c.security.cap_add == ("NET_BIND_SERVICE",)  # normalised like the Docker source does
    assert c.security.read_only_rootfs is None  # not recorded
    assert c.filesystem == FilesystemBaseline(("/tmp", "/var/cache/nginx"), ())
    standalone = b.workload(WorkloadKey("", "standalone"))
    assert standalone is not None
    assert standalone.listeners is None
    assert b.node("node-3") == NodeBaseline(name="node-*", kernel="6.1.0-*", runtime_version="docker://20.10.24")


def test_sha256_and_source_identify_the_document(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(VALID, encoding="utf-8")
    info = baselines.load_document(path).info
    assert info.source == str(path)
    assert len(info.sha256) == 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\nworkloads:\n  - workload: web\n    colour: blue\n",
            ["F:4: workloads.0.colour: unknown field"],
        ),
        ("version: 2\n", ["F:1: version: unsupported baseline version 2 (this ztmon reads version 1)"]),
        ("workloads: []\n", ["F:1: version: required field missing"]),
        (
            "version: 1\nworkloads:\n  - namespace: a\n    containers: []\n",
            ["F:3: workloads.0.workload: required field missing"],
        ),
        (
            (
                "version: 1\nworkloads:\n  - workload: web\n    containers:\n      - name: web\n"
                "        images:\n          - reference: web:1\n            digests: [sha256:abc]\n"
            ),
            [
                (
                    "F:8: workloads.0.containers.0.images.0.digests.0: "
                    "not an image digest (sha256:<64 lower-case hex>): 'sha256:abc'"
                )
            ],
        ),
        (
            "version: 1\nworkloads:\n  - workload: web\n    listeners:\n      - port: 70000\n",
            ["F:5: workloads.0.listeners.0.port: Input should be less than or equal to 65535"],
        ),
        (
            "version: 1\nworkloads:\n  - workload: web\n    listeners:\n      - {port: 80, protocol: icmp}\n",
            ["F:5: workloads.0.listeners.0.protocol: Input should be 'tcp', 'udp' or 'sctp'"],
        ),
        (
            (
                "version: 1\nworkloads:\n  - workload: web\n    containers:\n      - name: web\n"
                "        filesystem:\n          allowed_paths: [tmp]\n"
            ),
            ["F:7: workloads.0.containers.0.filesystem.allowed_paths.0: not an absolute path: 'tmp'"],
        ),
        (
            (
                "version: 1\nworkloads:\n  - workload: web\n    containers:\n      - name: web\n"
                "        security:\n          privileged: maybe\n"
            ),
            [
                (
                    "F:7: workloads.0.containers.0.security.privileged: Input should be a valid boolean, unable to "
                    "interpret input"
                )
            ],
        ),
        (
            "version: 1\nworkloads:\n  - workload: web\n  - namespace: ''\n    workload: web\n",
            ["F:4: workloads.1: duplicate workload web (first at line 3)"],
        ),
        (
            "version: 1\nworkloads:\n  - workload: web\n    containers:\n      - name: a\n      - name: a\n",
            ["F:6: workloads.0.containers.1.name: duplicate container 'a' (first at line 5)"],
        ),
        ("version: 1\nversion: 1\n", ["F:2: version: duplicate key (first at line 1)"]),
        ("- 1\n", ["F:1: (root): expected a mapping, got list"]),
        ("", ["F:1: (root): empty document (expected a mapping with `version: 1`)"]),
    ],
    ids=[
        "unknown-field",
        "version",
        "missing-version",
        "missing-workload",
        "digest",
        "port-range",
        "protocol",
        "relative-path",
        "bool",
        "duplicate-workload",
        "duplicate-container",
        "duplicate-key",
        "not-a-mapping",
        "empty",
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert errors(tmp_path, text) == expected


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "version: 1\nworkloads: [\n")
    assert line.startswith("F:3: (yaml): ")  # the problem text is libyaml's or PyYAML's
    assert len(line) > len("F:3: (yaml): ")


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    found = errors(tmp_path, "version: 1\nbogus: 1\nworkloads:\n  - workload: ''\n")
    assert found == [
        "F:2: bogus: unknown field",
        "F:4: workloads.0.workload: String should have at least 1 character",
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(baselines.BaselineError) as e:
        baselines.load_document(missing)
    assert e.value.errors == [f"{missing}: cannot read: No such file or directory"]


FULL = Baseline(
    metadata=Metadata(
        generated_by="test", generated_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC), node="n1", learned_seconds=60.0
    ),
    nodes=(NodeBaseline(name="n1", os_image="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0-26-amd64"),),
    workloads=(
        WorkloadBaseline(
            namespace="shop",
            workload="Deployment/web",
            listeners=(ListenerBaseline(8080, "tcp", tls=False, scope="all"), ListenerBaseline(53, "udp")),
            containers=(
                ContainerBaseline(
                    name="web",
                    images=(ImageBaseline("web:1", (DIGEST,)),),
                    security=SecurityBaseline(
                        privileged=False, user="", cap_add=(), cap_drop=("ALL",), published_ports=("*:80->8080/tcp",)
                    ),
                    filesystem=FilesystemBaseline(("/tmp",), ("/tmp/tool",)),
                ),
                ContainerBaseline(name="sidecar"),
            ),
        ),
        WorkloadBaseline(namespace="", workload="plain"),
    ),
)


def test_saved_document_loads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "out.yaml"
    baselines.save_document(path, FULL)
    back = baselines.load_document(path).baseline
    assert back.metadata == FULL.metadata
    assert back.nodes == FULL.nodes
    assert baselines.dumps_document(back) == baselines.dumps_document(FULL)
    web = back.workload(WorkloadKey("shop", "Deployment/web"))
    assert web is not None
    assert set(web.listeners or ()) == set(FULL.workloads[0].listeners or ())
    assert web.container("web") == FULL.workloads[0].container("web")
    assert web.container("sidecar") == ContainerBaseline(name="sidecar")  # nothing recorded stays nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]  # no temporary file left behind
    assert path.read_text(encoding="utf-8").startswith("# ztmon baseline document")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.yaml"
    path.write_text("old", encoding="utf-8")
    inode = path.stat().st_ino
    baselines.save_document(path, FULL)
    assert path.stat().st_ino != inode  # a rename, not an in-place rewrite a reader could see half of
    assert "version: 1" in path.read_text(encoding="utf-8")

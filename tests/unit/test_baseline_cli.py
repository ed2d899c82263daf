"""`ztmon baseline learn|diff` without Docker: durations, exit codes, and errors with their locations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner

from ztmon.cli.app import app
from ztmon.cli.baseline import parse_duration

# No Docker, no host paths: only what the test provides. A fixture proc tree gives the node's kernel.
ENV = {"ZTMON_SOURCES__DOCKER__ENABLED": "false", "ZTMON_SOURCES__HOST__ENABLED": "true"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("2m30s", 150.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-1", "1d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


@pytest.fixture(autouse=True)
def _keep_logging_config() -> Iterator[None]:
    """The commands configure structlog (level warning); other tests must not inherit that."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('PRETTY_NAME="Fixture Linux 1"\n', encoding="utf-8")
    proc = tmp_path / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text("6.1.0-99-fixture\n", encoding="utf-8")
    for k, v in {
        **ENV,
        "ZTMON_SOURCES__HOST__ROOT": str(root),
        "ZTMON_SOURCES__HOST__PROC_ROOT": str(proc),
        "ZTMON_NODE_NAME": "node-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("ZTMON_CONFIG", raising=False)
    return tmp_path


def test_diff_rejects_a_bad_document_with_its_location(host: Path) -> None:
    doc = host / "b.yaml"
    doc.write_text("version: 1\nnodes:\n  - kernal: 6.1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["baseline", "diff", str(doc)])
    assert result.exit_code == 2
    assert f"{doc}:3: nodes.0.kernal: unknown field" in result.output


def test_learn_then_diff_the_node(host: Path) -> None:
    out = host / "learned.yaml"
    result = CliRunner().invoke(app, ["baseline", "learn", "--output", str(out), "--source", "host"])
    assert result.exit_code == 0, result.output
    assert "kernel: 6.1.0-99-fixture" in out.read_text(encoding="utf-8")
    same = CliRunner().invoke(app, ["baseline", "diff", str(out), "--source", "host", "--output", "json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["findings"] == []
    (host / "proc/sys/kernel/osrelease").write_text("6.5.0-1-fixture\n", encoding="utf-8")
    drifted = CliRunner().invoke(app, ["baseline", "diff", str(out), "--source", "host", "--output", "json"])
    assert drifted.exit_code == 1  # any drift fails by default
    [f] = json.loads(drifted.stdout)["findings"]
    assert (f["check"], f["evidence"]["observed"]) == ("drift-node", "6.5.0-1-fixture")
    never = CliRunner().invoke(app, ["baseline", "diff", str(out), "--source", "host", "--fail-on", "never"])
    assert never.exit_code == 0

"""The typer application: run (the daemon), scan (one cycle), config, version.

Exit codes: 0 success (no open finding at or above --fail-on); 1 an open finding at or above --fail-on;
2 usage or configuration error; 3 incomplete scan (a requested or gating source failed) or internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ztmon import __version__
from ztmon.cli import baseline, common, daemon
from ztmon.cli.common import EXIT_USAGE, FailOn, Output

app = typer.Typer(
    name="ztmon",
    help="Zero-trust runtime security monitor: container posture as Prometheus metrics, JSON and events.\n\n"
    "Exit codes: 0 ok, 1 findings at or above --fail-on, 2 usage or configuration error, 3 incomplete scan"
    " (a source named by --source, or any source under --fail-on, could not be read) or internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (default: $ZTMON_CONFIG).", show_default=False),
]


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _load(config: Path | None) -> Any:
    return daemon.load_or_exit(config)


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run the daemon: watch sources, serve /metrics, /findings, /healthz, /readyz.

    \b
    Examples:
      ztmon run
      ztmon run --config /etc/ztmon/config.yaml
      ZTMON_SERVER__PORT=9900 ZTMON_LOG__FORMAT=console ztmon run
    """
    daemon.run(config)


@app.command()
def scan(  # noqa: PLR0917 - typer passes every option by keyword
    config: ConfigOpt = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table for people, json for machines.")] = (
        Output.table
    ),
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when an open finding is at or above this severity.")
    ] = FailOn.never,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Only these sources (repeatable): host, docker, procfs, capture."),
    ] = None,
    show_suppressed: Annotated[bool, typer.Option("--show-suppressed", help="List suppressed findings too.")] = False,
    files: Annotated[
        list[Path] | None,
        typer.Option("--files", "-f", help="Scan Kubernetes manifests offline (files, dirs, - for stdin)."),
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="RFC 3339 time the age checks measure from (default: now).")
    ] = None,
    more_files: Annotated[
        list[Path] | None, typer.Argument(help="More manifest paths after --files (--files a.yaml b/ c.json).")
    ] = None,
) -> None:
    """Run one cycle over the sources, print the findings, exit.

    \b
    Examples:
      ztmon scan
      ztmon scan --output json | jq '.findings[] | .check'
      ztmon scan --source docker --fail-on high
      ztmon scan --source procfs --source docker   # listeners, TLS and runtime posture
      ztmon scan --show-suppressed
      ztmon scan --files deploy/ --output sarif > ztmon.sarif
      helm template chart/ | ztmon scan --files - --now 2025-06-01T00:00:00Z --fail-on high
    """
    loaded = _load(config)
    if more_files and not files:
        _err("ztmon: paths need --files (ztmon scan --files PATH...)")
        raise typer.Exit(EXIT_USAGE)
    if files:
        files = [*files, *(more_files or [])]
        from ztmon.cli import offline  # noqa: PLC0415 - offline scans only

        raise typer.Exit(
            offline.run(
                loaded, files, now=now, output=output.value, fail_on=fail_on.value, show_suppressed=show_suppressed
            )
        )
    if output is Output.sarif or now is not None:
        _err("ztmon: --output sarif and --now apply to --files scans")
        raise typer.Exit(EXIT_USAGE)
    from ztmon import logsetup  # noqa: PLC0415
    from ztmon.engine import build  # noqa: PLC0415

    logsetup.setup(level="warning", fmt=loaded.settings.log.format)
    try:
        engine = build.make_engine(loaded, sinks=[], only_sources=source)
    except build.UsageError as e:
        _err(f"ztmon: {e}")
        raise typer.Exit(EXIT_USAGE) from None

    code = common.scan_and_print(
        engine, output=output, fail_on=fail_on, show_suppressed=show_suppressed, sources_requested=bool(source)
    )
    if code:
        raise typer.Exit(code)


@app.command("config")
def show_config(config: ConfigOpt = None) -> None:
    """Print the effective configuration (file + ZTMON_* environment), secrets redacted, as YAML.

    \b
    Examples:
      ztmon config --config ztmon.yaml
      ZTMON_SOURCES__DOCKER__ENABLED=false ztmon config
    """
    loaded = _load(config)
    import yaml  # noqa: PLC0415

    from ztmon import settings  # noqa: PLC0415

    sys.stdout.write(yaml.safe_dump(settings.redacted(loaded.settings), sort_keys=False))


@app.command()
def version() -> None:
    """Print the ztmon version."""
    sys.stdout.write(f"ztmon {__version__}\n")


app.add_typer(baseline.app, name="baseline")

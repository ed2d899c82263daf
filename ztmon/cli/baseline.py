"""`ztmon baseline learn` and `ztmon baseline diff`: write a baseline from what runs, and print drift from one.

Self-contained (it imports neither the main typer app nor rich at import time) so that `ztmon.cli.app` can
import it plainly. Exit codes as `scan`: 0 ok, 1 drift at or above --fail-on, 2 usage or configuration
error (a baseline document that does not validate included), 3 internal error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ztmon.cli import common, daemon
from ztmon.cli.common import EXIT_USAGE, FailOn, Output

app = typer.Typer(
    name="baseline",
    help="Learn a baseline from the running system, or print drift from one (docs/baseline.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (default: $ZTMON_CONFIG).", show_default=False),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="Only these sources (repeatable), e.g. docker, host, procfs, fschanges."),
]


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m', '1.5h' -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 90s, 5m, 1h30m)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _with(loaded: Any, **sections: dict[str, Any]) -> Any:
    """`loaded` with some settings replaced, e.g. baseline={"enabled": True}."""
    s = loaded.settings
    update = {name: getattr(s, name).model_copy(update=values) for name, values in sections.items()}
    return dataclasses.replace(loaded, settings=s.model_copy(update=update))


def _engine(loaded: Any, source: list[str] | None) -> Any:
    from ztmon import logsetup  # noqa: PLC0415
    from ztmon.engine import build  # noqa: PLC0415

    logsetup.setup(level="warning", fmt=loaded.settings.log.format)
    try:
        return build.make_engine(loaded, sinks=[], only_sources=source)
    except build.UsageError as e:
        _err(f"ztmon: {e}")
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def learn(
    config: ConfigOpt = None,
    duration: Annotated[
        str, typer.Option("--duration", "-d", help="Observe this long (90s, 5m, 1h); 0 = one observation.")
    ] = "0",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the document here (atomically); default: stdout.")
    ] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between observations.", min=0.1)] = 5.0,
    source: SourceOpt = None,
) -> None:
    """Observe the running workloads and the node, and write what was seen as a baseline document.

    Every workload gets its images (with digests), security settings, listeners (with the procfs source)
    and the paths its writable layer changed (fschanges). Review the document before committing it.

    \b
    Examples:
      ztmon baseline learn --duration 10m --output baseline.yaml
      ztmon baseline learn --source docker --source fschanges > baseline.yaml
    """
    seconds = parse_duration(duration)
    loaded = _with(
        daemon.load_or_exit(config),
        baseline={"enabled": False},  # learn from scratch: no document, no learning state
    )
    fschanges = loaded.settings.sources.fschanges.model_copy(update={"enabled": True})
    loaded = _with(loaded, sources={"fschanges": fschanges})
    engine = _engine(loaded, source)
    from ztmon.engine import baselines  # noqa: PLC0415
    from ztmon.engine.running import utcnow  # noqa: PLC0415

    async def observe() -> Any:
        try:
            return await baselines.learn(
                refresh=engine.refresh_all,
                parts=lambda: [s.part() for s in engine.sources],
                node_name=engine.node_name,
                duration=seconds,
                interval=interval,
                clock=utcnow,
            )
        finally:
            await engine.stop(2.0)

    baseline = asyncio.run(observe())
    down = [s for s in engine.sources if not s.up]
    if down:
        for s in down:
            _err(f"ztmon: source {s.name} is down: {s.error}")
        _err("ztmon: not writing a baseline that would miss what those sources see (use --source to leave them out)")
        raise typer.Exit(EXIT_USAGE)
    containers = sum(len(w.containers) for w in baseline.workloads)
    if output is None:
        sys.stdout.write(baselines.dumps_document(baseline))
    else:
        baselines.save_document(output, baseline)
    _err(
        f"ztmon: learned {len(baseline.workloads)} workloads ({containers} containers)"
        f"{' and the node' if baseline.nodes else ''} in {baseline.metadata.learned_seconds or 0:.0f} s"
        + (f" -> {output}" if output is not None else "")
    )


@app.command()
def diff(  # noqa: PLR0917 - typer passes every option by keyword
    file: Annotated[Path, typer.Argument(help="The baseline document.", show_default=False)],
    config: ConfigOpt = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table for people, json for machines.")] = (
        Output.table
    ),
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when drift is at or above this severity (default: any).")
    ] = FailOn.info,
    source: SourceOpt = None,
    show_suppressed: Annotated[bool, typer.Option("--show-suppressed", help="List suppressed drift too.")] = False,
) -> None:
    """Print the drift of the live state from FILE: one cycle of the drift checks, strict.

    Strict: a workload FILE does not name is drift (its image is not in the baseline), nothing learns.

    \b
    Examples:
      ztmon baseline diff baseline.yaml
      ztmon baseline diff baseline.yaml --output json | jq '.findings[] | .message'
      ztmon baseline diff baseline.yaml --fail-on high
    """
    from ztmon.model import drift  # noqa: PLC0415

    loaded = _with(
        daemon.load_or_exit(config),
        baseline={"enabled": True, "file": file, "unknown_workloads": "drift", "learned_file": None},
        checks={"enabled": tuple(sorted(drift.DRIFT_CHECKS)), "disabled": ()},
    )
    engine = _engine(loaded, source)
    code = common.scan_and_print(
        engine, output=output, fail_on=fail_on, show_suppressed=show_suppressed, sources_requested=bool(source)
    )
    if code:
        raise typer.Exit(code)

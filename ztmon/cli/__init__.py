"""ztmon command line. Exit codes: 0 ok, 1 findings at or above --fail-on, 2 usage/config error, 3 internal.

`ztmon run` takes a fast path that never imports typer or rich: the daemon renders no tables, and the
two cost about 16 MB of resident memory per node (measured; see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_INTERNAL = 3


def _limit_malloc_arenas(n: int = 2) -> None:
    """glibc gives each thread its own malloc arena (up to 8 per core); the daemon's worker threads
    (docker calls, events) then hold memory they never return. Two arenas are plenty for it.
    Same as MALLOC_ARENA_MAX=2, which wins when set."""
    import ctypes  # noqa: PLC0415
    import os  # noqa: PLC0415

    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, n)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return


def _daemon(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="ztmon run", add_help=False)
    parser.add_argument("--config", "-c", type=Path, default=None)
    ns, rest = parser.parse_known_args(argv)
    if rest:
        sys.stderr.write(f"ztmon run: unexpected arguments: {' '.join(rest)} (see ztmon run --help)\n")
        sys.exit(2)
    _limit_malloc_arenas()
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # structlog then skips its rich integration
    from ztmon.cli import daemon  # noqa: PLC0415

    daemon.run(ns.config)


def main() -> None:
    argv = sys.argv[1:]
    try:
        if argv[:1] == ["run"] and not {"-h", "--help"} & set(argv):
            _daemon(argv[1:])
        else:
            from ztmon.cli import app  # noqa: PLC0415

            app.app()
    except SystemExit:
        raise
    except Exception as e:  # last resort: one line, no locals
        sys.stderr.write(f"ztmon: internal error: {type(e).__name__}: {e}\n")
        sys.exit(EXIT_INTERNAL)

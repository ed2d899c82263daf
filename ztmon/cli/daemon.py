"""`ztmon run`: load the configuration, set up logging, run the daemon. Imports neither typer nor rich."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def load_or_exit(config: Path | None) -> Any:
    from ztmon import settings  # noqa: PLC0415

    try:
        return settings.load(config)
    except settings.ConfigError as e:
        sys.stderr.write("ztmon: invalid configuration:\n")
        for line in e.errors:
            sys.stderr.write(f"  {line}\n")
        sys.exit(EXIT_USAGE)


def run(config: Path | None) -> None:
    loaded = load_or_exit(config)
    from ztmon import logsetup  # noqa: PLC0415
    from ztmon.engine import build  # noqa: PLC0415

    logsetup.setup(level=loaded.settings.log.level, fmt=loaded.settings.log.format)
    try:
        asyncio.run(build.run_daemon(loaded))
    except build.UsageError as e:
        sys.stderr.write(f"ztmon: {e}\n")
        sys.exit(EXIT_USAGE)
    except OSError as e:  # e.g. the port is taken
        sys.stderr.write(f"ztmon: {e}\n")
        sys.exit(EXIT_USAGE)

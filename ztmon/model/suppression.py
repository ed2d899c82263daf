"""Suppression rules from configuration (the label/annotation form is parsed in checks.suppression)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

IGNORE_KEY = "ztmon.io/ignore"


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    """Suppress `check` ("*" = every check) on resources matching every given selector (fnmatch globs)."""

    check: str
    reason: str
    expires: date | None = None  # the rule stops applying after this day (UTC)
    namespace: str = "*"
    name: str = "*"  # container name, or pod name for pods
    image: str = "*"
    labels: tuple[tuple[str, str], ...] = ()  # every label must equal the value
    origin: str = ""  # where the rule was written (file:line), for messages

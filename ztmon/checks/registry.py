"""The check registry: each check module registers itself by id, like node_exporter's collectors."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

CheckFn: TypeAlias = Callable[[Snapshot], Iterable[Finding]]

_NOT_CHECKS = frozenset({"registry", "common", "suppression"})


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    fn: CheckFn
    severity: Severity  # the highest severity the check emits; milder variants are lower (docs/checks.md)
    title: str
    enabled_by_default: bool = True


_REGISTRY: dict[str, CheckSpec] = {}


def check(
    check_id: str, *, severity: Severity, title: str, enabled_by_default: bool = True
) -> Callable[[CheckFn], CheckFn]:
    """Register `fn` under `check_id`. The id is a public contract (docs/checks.md)."""

    def register(fn: CheckFn) -> CheckFn:
        if check_id in _REGISTRY and _REGISTRY[check_id].fn is not fn:
            raise RuntimeError(f"check id {check_id!r} registered twice")
        _REGISTRY[check_id] = CheckSpec(check_id, fn, severity, title, enabled_by_default)
        return fn

    return register


def all_checks() -> dict[str, CheckSpec]:
    """Import every check module of this package once and return the registry, sorted by id."""
    import ztmon.checks as pkg  # noqa: PLC0415 - the package imports its own modules on demand

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in _NOT_CHECKS and not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return dict(sorted(_REGISTRY.items()))

"""Classify environment values without keeping them: a ValueKind and the detectors that flag them.

Only detect-secrets' format-specific detectors are used: its entropy and keyword plugins flag plain
words such as "debug" or "production" when given a bare value (measured, see FACTS.md).
Values are inspected here and dropped; nothing returned carries them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ztmon.model.inventory import EnvVar, ValueKind

# 3600, 1.5, 30s, 10m, 512Mi: numbers and durations/sizes, never a secret by themselves
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(ns|us|ms|s|m|h|d|k|K|M|G|T|Ki|Mi|Gi|Ti|%)?")
_BOOLEAN = frozenset({"true", "false", "yes", "no", "on", "off", "enabled", "disabled", "none", "null"})
_PLACEHOLDER = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|\([A-Za-z_][A-Za-z0-9_]*\)|[A-Za-z_][A-Za-z0-9_]*)$")

_DETECTORS = (
    ("detect_secrets.plugins.aws", "AWSKeyDetector"),
    ("detect_secrets.plugins.github_token", "GitHubTokenDetector"),
    ("detect_secrets.plugins.gitlab_token", "GitLabTokenDetector"),
    ("detect_secrets.plugins.private_key", "PrivateKeyDetector"),
    ("detect_secrets.plugins.jwt", "JwtTokenDetector"),
    ("detect_secrets.plugins.basic_auth", "BasicAuthDetector"),
    ("detect_secrets.plugins.slack", "SlackDetector"),
    ("detect_secrets.plugins.stripe", "StripeDetector"),
    ("detect_secrets.plugins.openai", "OpenAIDetector"),
    ("detect_secrets.plugins.pypi_token", "PypiTokenDetector"),
    ("detect_secrets.plugins.npm", "NpmDetector"),
    ("detect_secrets.plugins.sendgrid", "SendGridDetector"),
    ("detect_secrets.plugins.twilio", "TwilioKeyDetector"),
    ("detect_secrets.plugins.azure_storage_key", "AzureStorageKeyDetector"),
    ("detect_secrets.plugins.discord", "DiscordBotTokenDetector"),
)


@functools.cache
def _plugins() -> tuple[Any, ...]:
    import importlib  # noqa: PLC0415 - detect-secrets is imported only when an env value is scanned

    found = []
    for module, cls in _DETECTORS:
        try:
            found.append(getattr(importlib.import_module(module), cls)())
        except (ImportError, AttributeError):  # a renamed plugin must not break scanning
            continue
    return tuple(found)


def detectors(value: str) -> tuple[str, ...]:
    hits: list[str] = []
    for plugin in _plugins():
        try:
            if plugin.analyze_line(filename="env", line=value, line_number=0):
                hits.append(str(plugin.secret_type))
        except Exception:  # noqa: S112 - a plugin bug on odd input is not a reason to drop the container
            continue
    return tuple(hits)


def kind_of(value: str) -> ValueKind:
    v = value.strip()
    if not v:
        return ValueKind.EMPTY
    if _PLACEHOLDER.match(v):
        return ValueKind.REFERENCE
    if v.startswith("/") and " " not in v:
        return ValueKind.PATH
    if _NUMBER.fullmatch(v) and not (v.isdigit() and len(v) >= 6):  # long digit runs may be PINs
        return ValueKind.NUMBER
    if v.lower() in _BOOLEAN:
        return ValueKind.BOOLEAN
    return ValueKind.LITERAL


def classify(name: str, value: str) -> EnvVar:
    """Keep the name, the value's kind and detector names; the value itself is dropped here."""
    kind = kind_of(value)
    found = detectors(value) if kind is ValueKind.LITERAL else ()
    return EnvVar(name=name, kind=kind, detectors=found)


def parse_env_list(entries: list[str] | None) -> tuple[EnvVar, ...]:
    """Docker's `Config.Env` ("NAME=value" strings); an entry without "=" has an empty value."""
    out = []
    for entry in entries or ():
        name, _, value = str(entry).partition("=")
        if name:
            out.append(classify(name, value))
    return tuple(out)

"""secretscan: classify a value without keeping it."""

from __future__ import annotations

import pytest

from ztmon.model.inventory import ValueKind
from ztmon.sources import secretscan

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----"
URL_WITH_PASSWORD = "postgres://user:pass@db:5432/x"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def test_github_token_fixture_has_36_characters_after_prefix():
    assert len(GITHUB_TOKEN) == 4 + 36


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", ValueKind.EMPTY),
        ("   ", ValueKind.EMPTY),
        ("/run/secrets/db", ValueKind.PATH),
        ("/etc/app/config.yaml", ValueKind.PATH),
        ("/not a path", ValueKind.LITERAL),
        ("3600", ValueKind.NUMBER),
        ("-1", ValueKind.NUMBER),
        ("1.5", ValueKind.NUMBER),
        (".5", ValueKind.NUMBER),
        ("1e3", ValueKind.NUMBER),
        ("30s", ValueKind.NUMBER),
        ("10m", ValueKind.NUMBER),
        ("250ms", ValueKind.NUMBER),
        ("24h", ValueKind.NUMBER),
        ("512Mi", ValueKind.NUMBER),
        ("2Gi", ValueKind.NUMBER),
        ("50%", ValueKind.NUMBER),
        ("true", ValueKind.BOOLEAN),
        ("FALSE", ValueKind.BOOLEAN),
        ("yes", ValueKind.BOOLEAN),
        ("No", ValueKind.BOOLEAN),
        ("on", ValueKind.BOOLEAN),
        ("off", ValueKind.BOOLEAN),
        ("enabled", ValueKind.BOOLEAN),
        ("disabled", ValueKind.BOOLEAN),
        ("null", ValueKind.BOOLEAN),
        ("none", ValueKind.BOOLEAN),
        ("${DB_PASSWORD}", ValueKind.REFERENCE),
        ("$DB_PASSWORD", ValueKind.REFERENCE),
        ("$(DB_PASSWORD)", ValueKind.REFERENCE),  # Kubernetes dependent variable
        (" ${X} ", ValueKind.REFERENCE),
        ("${X}suffix", ValueKind.LITERAL),  # not only a reference
        ("${1X}", ValueKind.LITERAL),
        ("hunter2", ValueKind.LITERAL),
        ("production", ValueKind.LITERAL),
        ("1.2.3", ValueKind.LITERAL),
        ("0x1f", ValueKind.LITERAL),
        ("12ab", ValueKind.LITERAL),
        (AWS_KEY, ValueKind.LITERAL),
    ],
)
def test_kind_of(value, kind):
    assert secretscan.kind_of(value) is kind


@pytest.mark.parametrize(
    ("value", "detector"),
    [
        (AWS_KEY, "AWS Access Key"),
        (GITHUB_TOKEN, "GitHub Token"),
        (PRIVATE_KEY, "Private Key"),
        (URL_WITH_PASSWORD, "Basic Auth Credentials"),
        (JWT, "JSON Web Token"),
    ],
)
def test_detectors_flag_secret_formats(value, detector):
    assert detector in secretscan.detectors(value)


@pytest.mark.parametrize(
    "value",
    [
        "debug",
        "production",
        "hunter2",
        "0123456789abcdef0123456789abcdef",  # hex ids (build ids, trace ids)
        "3f2a1b9c8d7e",
        "c0ffee" + "0" * 58,
        "https://example.com/path",  # a URL without credentials
        "postgres://db:5432/x",
        "",
    ],
)
def test_detectors_ignore_plain_values(value):
    assert secretscan.detectors(value) == ()


@pytest.mark.parametrize(("name", "value"), [("AWS_KEY", AWS_KEY), ("TOKEN", GITHUB_TOKEN), ("K", PRIVATE_KEY)])
def test_classify_keeps_name_kind_and_detectors(name, value):
    var = secretscan.classify(name, value)
    assert var.name == name
    assert var.kind is ValueKind.LITERAL
    assert var.detectors


@pytest.mark.parametrize("value", [AWS_KEY, GITHUB_TOKEN, PRIVATE_KEY, URL_WITH_PASSWORD, JWT, "hunter2"])
def test_classify_never_keeps_the_value(value):
    var = secretscan.classify("DB_PASSWORD", value)
    assert value not in repr(var)
    assert all(value not in str(getattr(var, f)) for f in var.__slots__)
    assert "user:pass" not in repr(var)


@pytest.mark.parametrize(
    ("value", "scanned"),
    [("3600", False), ("30s", False), ("true", False), ("${X}", False), ("", False), ("abc", True)],
)
def test_classify_runs_detectors_on_literals_only_not_on_numbers_booleans_references(monkeypatch, value, scanned):
    seen: list[str] = []
    monkeypatch.setattr(secretscan, "detectors", lambda v: seen.append(v) or ())
    secretscan.classify("X", value)
    assert bool(seen) is scanned


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (None, ()),
        ([], ()),
        (["A=1"], (("A", ValueKind.NUMBER),)),
        (["A="], (("A", ValueKind.EMPTY),)),
        (["A"], (("A", ValueKind.EMPTY),)),  # no "=": empty value
        (["A=b=c"], (("A", ValueKind.LITERAL),)),  # split on the first "=" only
        (["=orphan"], ()),  # no name: dropped
        (["PATH=/usr/bin:/bin", "HOME=/root"], (("PATH", ValueKind.PATH), ("HOME", ValueKind.PATH))),
    ],
)
def test_parse_env_list(entries, expected):
    assert tuple((v.name, v.kind) for v in secretscan.parse_env_list(entries)) == expected

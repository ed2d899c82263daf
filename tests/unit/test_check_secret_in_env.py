"""secret-in-env: a secret-sounding name with a literal value, or a detector hit whatever the name."""

from __future__ import annotations

import pytest

from ztmon.checks.secret_in_env import name_says_secret
from ztmon.model.findings import Severity
from ztmon.model.inventory import EnvVar, ValueKind
from ztmon.model.policy import SECRET_NAME_SAFE_SUFFIXES, SECRET_NAME_WORDS, Policy
from ztmon.sources import secretscan

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("PASSWORD", True),
        ("db-password", True),  # case and "-" do not matter
        ("app.secret", True),
        ("GITHUB_TOKEN", True),
        ("API_KEY", True),  # a two-token word, matched as consecutive tokens
        ("STRIPE_API_KEY_LIVE", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("SECRET_KEY_BASE", True),
        ("PASSWORD_FILE", False),  # metadata suffixes
        ("TOKEN_TTL", False),
        ("AUTH_TOKEN_TIMEOUT", False),
        ("SECRET_NAME", False),
        ("AWS_ACCESS_KEY_ID", False),
        ("PASSWORD_ENABLED", False),
        ("PASSPORT_NUMBER", False),  # PASS only as a whole token
        ("MYPASSWORD", False),
        ("KEYBOARD_LAYOUT", False),
        ("API", False),
        ("DEBUG", False),
        ("", False),
        ("___", False),
    ],
)
def test_name_says_secret(name, secret):
    assert name_says_secret(name, SECRET_NAME_WORDS, SECRET_NAME_SAFE_SUFFIXES) is secret


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PASSWORD", "hunter2"),
        ("API_KEY", "abc123"),
        ("SECRET", "s3cr3t"),
        ("db-password", "hunter2"),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("GREETING", "AKIAIOSFODNN7EXAMPLE"),  # detector hit on a harmless name
        ("DATABASE_URL", "postgres://user:pass@db:5432/x"),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),  # safe suffix, but the detector sees the key
    ],
)
def test_secret_in_env_flags(check, container, name, value):
    (f,) = check("secret-in-env", container(env=(secretscan.classify(name, value),)))
    assert f.severity is Severity.HIGH
    assert dict(f.evidence)["variables"] == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PASSWORD_FILE", "/run/secrets/db"),
        ("DB_PASSWORD", "/run/secrets/db"),  # a path, not a password
        ("TOKEN_TTL", "3600"),
        ("SESSION_TOKEN_TIMEOUT", "30s"),
        ("DB_PASSWORD", ""),
        ("DB_PASSWORD", "   "),
        ("DB_PASSWORD", "${DB_PASSWORD}"),
        ("DB_PASSWORD", "$DB_PASSWORD"),
        ("PASSWORD_ENABLED", "true"),
        ("SECRET", "false"),
        ("SECRET_NAME", "db-credentials"),
        ("DEBUG", "true"),
        ("ENV", "production"),
        ("BUILD_ID", "3f2a1b9c8d7e0123456789abcdef0123"),
    ],
)
def test_secret_in_env_passes(check, container, name, value):
    assert check("secret-in-env", container(env=(secretscan.classify(name, value),))) == []


@pytest.mark.parametrize(
    "kind", [ValueKind.EMPTY, ValueKind.REFERENCE, ValueKind.PATH, ValueKind.NUMBER, ValueKind.BOOLEAN]
)
def test_secret_in_env_secret_name_with_non_literal_kind_passes(check, container, kind):
    assert check("secret-in-env", container(env=(EnvVar("DB_PASSWORD", kind),))) == []


def test_secret_in_env_detector_on_harmless_name_is_flagged_with_detector_reason(check, container):
    var = EnvVar("GREETING", ValueKind.LITERAL, detectors=("AWS Access Key",))
    (f,) = check("secret-in-env", container(env=(var,)))
    assert dict(f.evidence) == {"variables": "GREETING", "env.GREETING": "value matches AWS Access Key"}


def test_secret_in_env_detector_wins_over_kind(check, container):
    var = EnvVar("KEY_PATH", ValueKind.PATH, detectors=("Private Key",))
    (f,) = check("secret-in-env", container(env=(var,)))
    assert dict(f.evidence)["env.KEY_PATH"] == "value matches Private Key"


def test_secret_in_env_several_detectors_joined(check, container):
    var = EnvVar("BLOB", ValueKind.LITERAL, detectors=("JSON Web Token", "Basic Auth Credentials"))
    (f,) = check("secret-in-env", container(env=(var,)))
    assert dict(f.evidence)["env.BLOB"] == "value matches JSON Web Token+Basic Auth Credentials"


def test_secret_in_env_one_finding_per_container_listing_variables(check, container):
    env = (
        EnvVar("PATH", ValueKind.LITERAL),
        EnvVar("DB_PASSWORD", ValueKind.LITERAL),
        EnvVar("API_KEY", ValueKind.LITERAL),
        EnvVar("TOKEN_TTL", ValueKind.NUMBER),
    )
    (f,) = check("secret-in-env", container(env=env))
    assert dict(f.evidence) == {
        "variables": "API_KEY,DB_PASSWORD",
        "env.DB_PASSWORD": "name suggests a secret and the value is a literal",
        "env.API_KEY": "name suggests a secret and the value is a literal",
    }
    assert f.message == "container web has literal secrets in environment variables: API_KEY, DB_PASSWORD"


def test_secret_in_env_finding_id_does_not_depend_on_variables(check, container):
    (a,) = check("secret-in-env", container(env=(EnvVar("DB_PASSWORD", ValueKind.LITERAL),)))
    (b,) = check("secret-in-env", container(env=(EnvVar("API_KEY", ValueKind.LITERAL),)))
    assert a.id == b.id


def test_secret_in_env_one_finding_for_each_container(check, container):
    env = (EnvVar("DB_PASSWORD", ValueKind.LITERAL),)
    findings = check("secret-in-env", container(env=env), container(env=env, name="api", id="a" * 64))
    assert len({f.id for f in findings}) == 2


def test_secret_in_env_uses_policy_words(check, container):
    policy = Policy(secret_name_words=("PIN",))
    env = (EnvVar("CARD_PIN", ValueKind.LITERAL), EnvVar("DB_PASSWORD", ValueKind.LITERAL))
    (f,) = check("secret-in-env", container(env=env), policy=policy)
    assert dict(f.evidence)["variables"] == "CARD_PIN"


@pytest.mark.parametrize(
    ("name", "suffixes"),
    [
        ("AWS_ACCESS_KEY_ID", ("KEY_ID",)),
        ("DB_PASSWORD_FILE", ("file",)),
    ],
)
def test_name_says_secret_honours_configured_suffix(name, suffixes):
    assert not name_says_secret(name, SECRET_NAME_WORDS, suffixes)

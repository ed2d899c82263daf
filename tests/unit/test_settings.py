"""settings.load: file + environment, every problem as one `place: field: message` line."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from ztmon import settings
from ztmon.model.findings import Severity


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("ZTMON_"):
            monkeypatch.delenv(name)


SEVERITY_NAMES = "(one of info, low, medium, high, critical)"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ztmon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path | None) -> list[str]:
    with pytest.raises(settings.ConfigError) as info:
        settings.load(path)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def test_defaults_without_file():
    loaded = settings.load(None)
    s = loaded.settings
    assert loaded.path is None
    assert loaded.lines == {}
    assert (s.server.address, s.server.port) == ("0.0.0.0", settings.DEFAULT_PORT)
    assert s.checks.enabled is None
    assert s.suppressions == ()


def test_empty_file_gives_defaults(tmp_path):
    assert settings.load(write(tmp_path, "")).settings == settings.load(None).settings


def test_valid_file(tmp_path):
    path = write(
        tmp_path,
        """\
node_name: n1
server:
  port: 9900
checks:
  disabled: [mutable-image]
  severity:
    run-as-root: high
suppressions:
  - check: readonly-rootfs
    reason: legacy app
    expires: 2030-01-31
    selector:
      namespace: shop
      labels: {team: web}
""",
    )
    s = settings.load(path).settings
    assert s.node_name == "n1"
    assert s.server.port == 9900
    assert s.checks.disabled == ("mutable-image",)
    assert s.checks.severity == {"run-as-root": Severity.HIGH}
    (rule,) = s.suppressions
    assert (rule.check, rule.reason, rule.expires) == ("readonly-rootfs", "legacy app", date(2030, 1, 31))
    assert (rule.selector.namespace, rule.selector.name, rule.selector.labels) == ("shop", "*", {"team": "web"})


def test_line_map_points_at_keys_and_list_items(tmp_path):
    path = write(tmp_path, "server:\n  port: 9900\nsuppressions:\n  - check: privileged\n    reason: x\n")
    lines = settings.load(path).lines
    assert lines[("server",)] == 1
    assert lines[("server", "port")] == 2
    assert lines[("suppressions", "0")] == 4
    assert lines[("suppressions", "0", "reason")] == 5


def test_several_errors_each_on_its_own_line(tmp_path):
    path = write(
        tmp_path,
        """\
log:
  level: loud
server:
  port: 70000
  bogus: 1
checks:
  severity:
    privileged: extreme
suppressions:
  - check: privileged
    reason: ""
  - reason: no check given
""",
    )
    assert errors_of(path) == [
        f"{path}:2: log.level: Input should be 'debug', 'info', 'warning' or 'error'",
        f"{path}:4: server.port: Input should be less than or equal to 65535",
        f"{path}:5: server.bogus: Extra inputs are not permitted",
        f"{path}:8: checks.severity.privileged: Value error, unknown severity 'extreme' {SEVERITY_NAMES}",
        f"{path}:11: suppressions.0.reason: String should have at least 1 character",
        f"{path}:12: suppressions.1.check: Field required",  # the list item's line: the key is missing
    ]


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("colour: blue\n", "colour", 1),
        ("server:\n  tls:\n    cert: /x\n", "server.tls.cert", 3),
        ("sources:\n  docker:\n    socket: /x\n", "sources.docker.socket", 3),
        ("suppressions:\n  - check: x\n    reason: y\n    selector:\n      pod: z\n", "suppressions.0.selector.pod", 5),
    ],
)
def test_unknown_keys_rejected(tmp_path, text, field, line):
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:{line}: {field}: Extra inputs are not permitted"]


def test_env_overrides_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZTMON_SERVER__PORT", "1234")
    path = write(tmp_path, "server:\n  port: 5555\n  address: 127.0.0.1\n")
    s = settings.load(path).settings
    assert s.server.port == 1234
    assert s.server.address == "127.0.0.1"  # the rest of the file's section is kept


def test_env_override_hides_bad_file_value(tmp_path, monkeypatch):
    monkeypatch.setenv("ZTMON_SERVER__PORT", "1234")
    assert settings.load(write(tmp_path, "server:\n  port: nope\n")).settings.server.port == 1234


def test_bad_env_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("ZTMON_SERVER__PORT", "abc")
    path = write(tmp_path, "server:\n  port: 5555\n")
    assert errors_of(path) == [
        "env ZTMON_SERVER__PORT: server.port: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_bad_env_value_without_file(monkeypatch):
    monkeypatch.setenv("ZTMON_LOG__LEVEL", "loud")
    assert errors_of(None) == ["env ZTMON_LOG__LEVEL: log.level: Input should be 'debug', 'info', 'warning' or 'error'"]


def test_unknown_env_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("ZTMON_FOO", "1")
    assert errors_of(None) == ["env ZTMON_FOO: foo: unknown setting"]


def test_unknown_nested_env_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("ZTMON_SERVER__BOGUS", "1")
    assert errors_of(None) == ["env ZTMON_SERVER__BOGUS: server.bogus: Extra inputs are not permitted"]


def test_env_and_file_errors_reported_together(tmp_path, monkeypatch):
    monkeypatch.setenv("ZTMON_FOO", "1")
    path = write(tmp_path, "server:\n  port: -1\n")
    assert errors_of(path) == [
        "env ZTMON_FOO: foo: unknown setting",
        f"{path}:2: server.port: Input should be greater than or equal to 0",
    ]


def test_ztmon_config_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "server:\n  port: 9901\n")
    monkeypatch.setenv("ZTMON_CONFIG", str(path))
    loaded = settings.load(None)
    assert loaded.path == path
    assert loaded.settings.server.port == 9901


def test_ztmon_config_ignored_when_environ_path_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ZTMON_CONFIG", str(write(tmp_path, "server:\n  port: 9901\n")))
    assert settings.load(None, environ_path=False).settings.server.port == settings.DEFAULT_PORT


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    assert errors_of(path) == [f"{path}: cannot read: No such file or directory"]


def test_directory_instead_of_file_names_it(tmp_path):
    (error,) = errors_of(tmp_path)
    assert error.startswith(f"{tmp_path}: cannot read: ")


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "server:\n  port: 1\n  address: [unclosed\nlog: {}\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:4: (yaml): ")


def test_invalid_yaml_mapping_values(tmp_path):
    path = write(tmp_path, "server: x\n  port: 1\n")
    assert errors_of(path) == [f"{path}:2: (yaml): mapping values are not allowed here"]


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_root_must_be_a_mapping(tmp_path, text, kind):
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:1: (root): expected a mapping, got {kind}"]


def test_severity_override_is_case_insensitive(tmp_path):
    path = write(tmp_path, "checks:\n  severity:\n    privileged: HIGH\n")
    assert settings.load(path).settings.checks.severity == {"privileged": Severity.HIGH}


def test_suppression_reason_is_required(tmp_path):
    path = write(tmp_path, "suppressions:\n  - check: privileged\n")
    assert errors_of(path) == [f"{path}:2: suppressions.0.reason: Field required"]


def test_redacted_hides_bearer_token(tmp_path):
    path = write(tmp_path, "server:\n  auth:\n    bearer_token: s3cr3t-value\n")
    loaded = settings.load(path)
    shown = settings.redacted(loaded.settings)
    assert shown["server"]["auth"]["bearer_token"] == "**********"
    assert "s3cr3t-value" not in repr(shown)
    assert "s3cr3t-value" not in repr(loaded.settings)
    assert loaded.settings.server.auth.bearer_token is not None
    assert loaded.settings.server.auth.bearer_token.get_secret_value() == "s3cr3t-value"


def test_redacted_bearer_token_from_env(monkeypatch):
    monkeypatch.setenv("ZTMON_SERVER__AUTH__BEARER_TOKEN", "from-env-secret")
    shown = settings.redacted(settings.load(None).settings)
    assert "from-env-secret" not in repr(shown)


def test_redacted_is_json_ready():
    shown = settings.redacted(settings.load(None).settings)
    assert shown["server"]["auth"]["bearer_token"] is None
    assert shown["sources"]["host"]["root"] == "/"


@pytest.mark.parametrize(
    ("name", "value", "field"), [("ztmon_server__port", "abc", "server.port"), ("ztmon_foo", "1", "foo")]
)
def test_lower_case_env_variable_is_named_in_errors(monkeypatch, name, value, field):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.ConfigError) as info:
        settings.load(None)
    (error,) = info.value.errors
    assert error.lower().startswith(f"env {name}: {field}: ")

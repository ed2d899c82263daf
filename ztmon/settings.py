"""Configuration: a YAML file (`--config` / ZTMON_CONFIG) plus ZTMON_... environment overrides.

Every default carries a one-line "why". Unknown keys are rejected. Errors name their place:
`file:line: field: message` for the file, `env ZTMON_X__Y: field: message` for the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ztmon.model.findings import Severity
from ztmon.model.policy import (
    DANGEROUS_CAPABILITIES,
    SECRET_NAME_SAFE_SUFFIXES,
    SECRET_NAME_WORDS,
    SENSITIVE_HOST_PATHS,
)

ENV_PREFIX = "ZTMON_"
DEFAULT_PORT = 9847  # not taken in the Prometheus default-port allocations list we checked


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSConfig(_Strict):
    cert_file: Path | None = None  # serve HTTPS when set (with key_file)
    key_file: Path | None = None
    client_ca_file: Path | None = None  # require client certificates signed by this CA (mTLS)


class AuthConfig(_Strict):
    bearer_token_file: Path | None = None  # /metrics and /findings require this token when set
    bearer_token: SecretStr | None = None  # inline alternative; prefer a file (it is not echoed)


class ServerConfig(_Strict):
    enabled: bool = True
    address: str = "0.0.0.0"  # scraped by Prometheus from other hosts; loopback for local-only use
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    tls: TLSConfig = TLSConfig()
    auth: AuthConfig = AuthConfig()


class DockerSourceConfig(_Strict):
    enabled: bool = True  # auto: without a reachable engine the source reports up=0 and retries
    host: str = ""  # "" = DOCKER_HOST, else unix:///var/run/docker.sock (a podman socket works too)
    timeout_seconds: float = Field(10.0, gt=0)  # one API call; a hung dockerd must not stall a cycle
    include_stopped: bool = False  # a stopped container has no runtime posture to report
    inspect_concurrency: int = Field(8, ge=1, le=64)  # parallel inspects at resync; dockerd serialises beyond


class HostSourceConfig(_Strict):
    enabled: bool = True
    root: Path = Path("/")  # host root (os-release); a DaemonSet mounts the host's at e.g. /host
    proc_root: Path = Path("/proc")  # kernel version; injectable for fixtures


class SourcesConfig(_Strict):
    docker: DockerSourceConfig = DockerSourceConfig()
    host: HostSourceConfig = HostSourceConfig()


class EngineConfig(_Strict):
    resync_interval_seconds: float = Field(60.0, ge=1)  # full relist catches any event we missed
    resync_jitter_seconds: float = Field(5.0, ge=0)  # spreads a fleet's relists over time
    debounce_seconds: float = Field(0.05, ge=0, le=5)  # one cycle for a burst of events, still < 1 s
    shutdown_timeout_seconds: float = Field(4.0, gt=0, le=30)  # SIGTERM must finish within 5 s


class PolicyConfig(_Strict):
    dangerous_capabilities: tuple[str, ...] = DANGEROUS_CAPABILITIES
    sensitive_host_paths: tuple[str, ...] = SENSITIVE_HOST_PATHS
    secret_name_words: tuple[str, ...] = SECRET_NAME_WORDS
    secret_name_safe_suffixes: tuple[str, ...] = SECRET_NAME_SAFE_SUFFIXES
    trusted_mutable_registries: tuple[str, ...] = ()  # registries enforcing immutable tags


def _severity(v: Any) -> Any:
    return Severity.parse(v) if isinstance(v, str) else v


class ChecksConfig(_Strict):
    enabled: tuple[str, ...] | None = None  # None = every check enabled by default
    disabled: tuple[str, ...] = ()
    severity: dict[str, Annotated[Severity, BeforeValidator(_severity)]] = {}  # per-check override
    policy: PolicyConfig = PolicyConfig()


class SelectorConfig(_Strict):
    namespace: str = "*"
    name: str = "*"
    image: str = "*"
    labels: dict[str, str] = {}


class SuppressionConfig(_Strict):
    check: str
    reason: str = Field(min_length=1)
    expires: date | None = None
    selector: SelectorConfig = SelectorConfig()


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"  # JSON for log pipelines; console for people


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    node_name: str = ""  # "" = $NODE_NAME (downward API), else the host name
    log: LogConfig = LogConfig()
    server: ServerConfig = ServerConfig()
    sources: SourcesConfig = SourcesConfig()
    engine: EngineConfig = EngineConfig()
    checks: ChecksConfig = ChecksConfig()
    suppressions: tuple[SuppressionConfig, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del settings_cls, dotenv_settings, file_secret_settings
        return (env_settings, init_settings)  # environment overrides the file

    def resolved_node_name(self) -> str:
        return self.node_name or os.environ.get("NODE_NAME", "") or os.uname().nodename


class ConfigError(Exception):
    """Every problem of a configuration, one `place: field: message` line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Loaded:
    settings: Settings
    path: Path | None
    lines: dict[tuple[str, ...], int]  # key path -> line in the file, for later messages


def _line_map(node: yaml.Node, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            out[(*prefix, key)] = k.start_mark.line + 1
            _line_map(v, (*prefix, key), out)
            out[(*prefix, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, (*prefix, str(i)), out)


def _env_name(loc: tuple[str, ...]) -> str | None:
    for n in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(loc[:n]).upper()
        if name in os.environ:
            return name
    return None


def load(path: Path | None, *, environ_path: bool = True) -> Loaded:
    """Read the file (if any) and the environment; raise ConfigError listing every problem."""
    if path is None and environ_path and os.environ.get("ZTMON_CONFIG"):
        path = Path(os.environ["ZTMON_CONFIG"])
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    where = str(path) if path else "<defaults>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError([f"{path}: cannot read: {e.strerror or e}"]) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError([f"{path}{line}: (yaml): {problem}"]) from None
        if node is not None:
            _line_map(node, (), lines)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError([f"{path}:1: (root): expected a mapping, got {type(raw).__name__}"])
        data = raw
    errors = [
        f"env {name}: {name[len(ENV_PREFIX) :].lower()}: unknown setting"
        for name in sorted(os.environ)
        if name.startswith(ENV_PREFIX)
        and name != "ZTMON_CONFIG"
        and name[len(ENV_PREFIX) :].split("__")[0].lower() not in Settings.model_fields
    ]
    try:
        settings = Settings(**data)
    except ValidationError as e:
        for err in e.errors(include_url=False, include_input=False):
            loc = tuple(str(x) for x in err["loc"])
            field = ".".join(loc) or "(root)"
            env = _env_name(loc)
            if env is not None:
                place = f"env {env}"
            else:
                at = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
                place = f"{where}:{at}" if at is not None else where
            errors.append(f"{place}: {field}: {err['msg']}")
    if errors:
        raise ConfigError(errors) from None
    return Loaded(settings, path, lines)


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration for people: secrets shown as '**********'."""
    return settings.model_dump(mode="json")  # SecretStr dumps as '**********' in json mode

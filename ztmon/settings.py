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
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator
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


class ProbeConfig(_Strict):
    enabled: bool = True  # TLS/plaintext classification is what the plaintext and cert-expiry checks read
    timeout_seconds: float = Field(1.5, gt=0, le=30)  # whole probe; a silent server costs exactly this
    banner_wait_seconds: float = Field(0.3, ge=0, le=5)  # server-first greetings (SMTP, SSH) come within ~300 ms
    concurrency: int = Field(384, ge=1, le=4096)  # 1,000 listeners (200 silent) in 2.6 s measured; <= 384 fds
    rate_per_second: float = Field(2000.0, gt=0)  # new connections per second: a node's services barely notice
    cache_ttl_seconds: float = Field(3600.0, ge=0)  # re-probe hourly even if unchanged: certificates rotate


class ProcfsSourceConfig(_Strict):
    # Opt-in: needs hostPID (and CAP_SYS_ADMIN for sock_diag, else /proc/<pid>/net); `--source procfs` enables it.
    enabled: bool = False
    proc_root: Path = Path("/proc")  # the host's /proc (hostPID); injectable for fixture trees
    listing: Literal["auto", "sock_diag", "proc"] = "auto"  # auto: sock_diag where setns works, else /proc
    map_processes: bool = True  # socket inode -> pid/comm through /proc/<pid>/fd: attribution of host-network pods
    postures: bool = True  # runtime posture of each container's main process (runtime-mismatch)
    probe: ProbeConfig = ProbeConfig()


class FsChangesSourceConfig(_Strict):
    """Writable-layer changes per container (Docker `changes`), for drift-filesystem. Docker API only."""

    enabled: bool | None = None  # None = on whenever the baseline is on (drift-filesystem reads it)
    interval_seconds: float = Field(60.0, ge=1)  # dockerd walks each upper dir per call: once a minute, not per event
    timeout_seconds: float = Field(10.0, gt=0)  # one API call; a hung dockerd must not stall the scan
    concurrency: int = Field(4, ge=1, le=32)  # parallel calls; 4 keeps dockerd's share of a small node's CPU low
    max_containers_per_scan: int = Field(200, ge=1)  # bounds one scan; the others follow round robin
    max_changes_per_container: int = Field(500, ge=10)  # memory bound; larger sets collapse by directory
    max_probes_per_scan: int = Field(256, ge=0)  # executable-bit checks: a stat request each (~2 ms)
    max_reads_per_scan: int = Field(16, ge=0)  # ELF-magic reads: dockerd builds a tar in a helper (~60 ms each)
    max_probe_bytes: int = Field(8192, ge=1024)  # a tar header (+ PAX for long paths) and 4 bytes of ELF magic


class SourcesConfig(_Strict):
    docker: DockerSourceConfig = DockerSourceConfig()
    host: HostSourceConfig = HostSourceConfig()
    procfs: ProcfsSourceConfig = ProcfsSourceConfig()
    fschanges: FsChangesSourceConfig = FsChangesSourceConfig()


class BaselineConfig(_Strict):
    """Baselines and drift (docs/baseline.md): a reviewed document, learning for what it does not name."""

    enabled: bool | None = None  # None = on when `file` is set; true = learn and lock without a document too
    file: Path | None = None  # the reviewed document (commit it); a mounted ConfigMap is a file, reloaded too
    unknown_workloads: Literal["learn", "drift"] = "learn"  # a workload not in the document learns, or is drift
    learning_window_seconds: float = Field(3600.0, ge=0)  # 1 h: start-up, health checks, hourly jobs all seen
    observe_interval_seconds: float = Field(10.0, gt=0)  # how often learning baselines grow between resyncs
    reload_interval_seconds: float = Field(5.0, gt=0)  # a stat per poll; kubelet's ConfigMap sync is ~1 min anyway
    learned_file: Path | None = None  # keeps workloads locked after learning across restarts (None = memory only)
    forget_after_seconds: float = Field(7 * 86400.0, gt=0)  # a learned workload gone a week is forgotten


class CaptureConfig(_Strict):
    """Passive plaintext detection: AF_PACKET + an in-kernel classic BPF filter (docs/checks.md#plaintext)."""

    enabled: bool = False  # opt-in: needs CAP_NET_RAW and sees payload prefixes of the node's traffic
    netns: Path | None = None  # a network namespace file to capture in (e.g. /run/netns/x); None = the agent's
    interface: str = ""  # "" = every interface of that namespace
    signatures: tuple[str, ...] = ()  # extra payload prefixes (>= 2 bytes) counted as plaintext besides HTTP
    max_packets_per_second: int = Field(2000, ge=1)  # budget for candidates reaching Python: < 5 % of a core
    snaplen: int = Field(128, ge=64, le=1500)  # bytes of a candidate copied to user space: headers + prefix


class EngineConfig(_Strict):
    resync_interval_seconds: float = Field(60.0, ge=1)  # full relist catches any event we missed
    resync_jitter_seconds: float = Field(5.0, ge=0)  # spreads a fleet's relists over time
    debounce_seconds: float = Field(0.05, ge=0, le=5)  # one cycle for a burst of events, still < 1 s
    shutdown_timeout_seconds: float = Field(4.0, gt=0, le=30)  # SIGTERM must finish within 5 s


class PortAllowConfig(_Strict):
    ports: tuple[str, ...]  # "8080/tcp", "53/udp"
    namespace: str = "*"
    name: str = "*"  # container or pod name glob; with node: true, the process name (comm)
    image: str = "*"
    labels: dict[str, str] = {}
    node: bool = False  # a rule for the node's own listeners (judged only once such a rule exists)


class NetworkPolicyConfig(_Strict):
    allowed_ports: tuple[PortAllowConfig, ...] = ()
    allow_declared_ports: bool = True  # Docker published/exposed ports are declared intent
    open_port_include_loopback: bool = False  # loopback is reachable only from inside its namespace
    cert_warning_days: int = Field(30, ge=0)  # cert-manager renews at 30 days left of a 90-day certificate
    cert_critical_days: int = Field(7, ge=0)  # a working week to react


class KubePolicyConfig(_Strict):
    secret_max_age_days: int = Field(90, ge=0)  # a quarterly rotation, as common credential policies ask
    # per Secret type; 0 = not judged (Helm release records and legacy tokens are not rotated credentials)
    secret_max_age_by_type: dict[str, int] = {"helm.sh/release.v1": 0, "kubernetes.io/service-account-token": 0}
    istio_root_namespace: str = "istio-system"  # Istio's default meshConfig.rootNamespace
    rbac_ignored_binding_prefixes: tuple[str, ...] = ("system:",)  # reconciled by the API server itself


class PolicyConfig(_Strict):
    dangerous_capabilities: tuple[str, ...] = DANGEROUS_CAPABILITIES
    sensitive_host_paths: tuple[str, ...] = SENSITIVE_HOST_PATHS
    secret_name_words: tuple[str, ...] = SECRET_NAME_WORDS
    secret_name_safe_suffixes: tuple[str, ...] = SECRET_NAME_SAFE_SUFFIXES
    trusted_mutable_registries: tuple[str, ...] = ()  # registries enforcing immutable tags
    network: NetworkPolicyConfig = NetworkPolicyConfig()  # open-port, cert-expiry
    kube: KubePolicyConfig = KubePolicyConfig()  # stale-secret, rbac-overprivileged, plaintext (mesh)


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


class MqttTLSConfig(_Strict):
    enabled: bool = False  # brokers on a trusted host network often run plain 1883; TLS is one switch away
    ca_file: Path | None = None  # None = the system trust store
    cert_file: Path | None = None  # client certificate for mTLS (with key_file)
    key_file: Path | None = None


class MqttConfig(_Strict):
    """Finding events over MQTT (docs/events.md). Off by default: it needs a broker."""

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)  # the IANA MQTT port; 8883 is the usual TLS one
    protocol: Literal["3.1.1", "5"] = "3.1.1"  # 3.1.1: every broker speaks it; events use no 5-only feature
    client_id: str = ""  # "" = ztmon-<node>: unique per node (two clients with one id kick each other out)
    username: str = ""
    password: SecretStr | None = None  # or ZTMON_MQTT__PASSWORD; prefer password_file (re-read on reconnect)
    password_file: Path | None = None
    tls: MqttTLSConfig = MqttTLSConfig()
    topic_prefix: str = "ztmon"  # topics: <prefix>/<cluster>/<node>/findings/<check>, .../summary, .../status
    cluster: str = "default"  # the cluster's name in topics and payloads; one broker can serve several clusters
    keepalive_seconds: int = Field(30, ge=5, le=600)  # a dead broker is noticed within 1.5x this
    outbox_path: Path | None = Path("/var/lib/ztmon/mqtt-outbox.sqlite")  # a hostPath/volume: survives restarts
    outbox_max_events: int = Field(100_000, ge=100)  # ~1 KB per event: <= ~100 MB; oldest dropped beyond
    memory_max_events: int = Field(10_000, ge=10)  # fallback while the outbox's disk fails: <= ~10 MB of RAM
    outbox_retry_seconds: float = Field(30.0, gt=0)  # how often a failed disk is tried again
    max_payload_bytes: int = Field(65_536, ge=1024)  # events are ~1 KB; larger ones lose evidence, then drop
    max_inflight: int = Field(100, ge=1, le=65535)  # QoS 1 messages awaiting PUBACK: throughput vs re-sends
    publish_timeout_seconds: float = Field(10.0, gt=0)  # no PUBACK (or CONNACK) by then: reconnect
    reconnect_min_seconds: float = Field(1.0, gt=0)  # backoff base, doubled per failure, with jitter
    reconnect_max_seconds: float = Field(60.0, gt=0)  # backoff cap: a fleet retries a dead broker once a minute
    audit_log: str = ""  # "" = off, "-" = stdout, else a file: every event as a JSON line, broker or not

    @model_validator(mode="after")
    def _coherent(self) -> MqttConfig:
        if any(c in self.topic_prefix for c in "+#\x00"):
            raise ValueError("topic_prefix must not contain MQTT wildcards (+, #)")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together")
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must be >= reconnect_min_seconds")
        return self


class KubernetesConfig(_Strict):
    """`mode: node` (DaemonSet agent) and `mode: cluster` (one scanner replica): docs/kubernetes.md."""

    kubeconfig: str = ""  # "" = in-cluster service account, else ~/.kube/config
    context: str = ""  # kubeconfig context; "" = the current one
    request_timeout_seconds: float = Field(30.0, gt=0)  # one list page; a hung API server must not stall startup
    watchdog_seconds: float = Field(70.0, gt=0)  # bookmarks arrive every 60 s: silence beyond 70 s is a dead watch
    watch_timeout_seconds: int = Field(300, ge=10)  # server-side watch timeout; resumes from its resourceVersion
    resync_seconds: float = Field(600.0, ge=0)  # full relist every 10 min catches any missed event (0 = never)
    # Off: reading kubernetes.io/tls Secrets (for cert-expiry) needs get/list on them, i.e. on private keys.
    read_tls_secrets: bool = False
    lease_namespace: str = ""  # "" = $POD_NAMESPACE, else "default"
    lease_name: str = "ztmon-cluster-scanner"
    lease_duration_seconds: float = Field(15.0, ge=2)  # client-go's default: a dead leader is replaced within ~15 s
    lease_retry_seconds: float = Field(2.0, gt=0)  # renew well within the duration


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    node_name: str = ""  # "" = $NODE_NAME (downward API), else the host name
    mode: Literal["docker", "node", "cluster"] = "docker"  # docker host | Kubernetes DaemonSet | cluster scanner
    log: LogConfig = LogConfig()
    server: ServerConfig = ServerConfig()
    sources: SourcesConfig = SourcesConfig()
    engine: EngineConfig = EngineConfig()
    checks: ChecksConfig = ChecksConfig()
    suppressions: tuple[SuppressionConfig, ...] = ()
    mqtt: MqttConfig = MqttConfig()
    capture: CaptureConfig = CaptureConfig()
    baseline: BaselineConfig = BaselineConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()

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
    """The environment variable behind a field; pydantic-settings matches names case-insensitively."""
    names = {n.upper(): n for n in os.environ}
    for n in range(len(loc), 0, -1):
        name = names.get(ENV_PREFIX + "__".join(loc[:n]).upper())
        if name is not None:
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
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() != "ZTMON_CONFIG"
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

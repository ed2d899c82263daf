"""Check parameters, carried inside the Snapshot so that checks stay pure functions of it."""

from __future__ import annotations

from dataclasses import dataclass

# Why these lists: each capability below is a known container-escape or host-takeover primitive
# (CIS Docker 5.3, Kubernetes Pod Security "restricted", Falco's default rules).
DANGEROUS_CAPABILITIES: tuple[str, ...] = (
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "DAC_READ_SEARCH",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "SYSLOG",
    "NET_RAW",
)

SENSITIVE_HOST_PATHS: tuple[str, ...] = (
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/root",
    "/boot",
    "/dev",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run",
    "/run",
    "/run/containerd",
    "/var/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/run/podman",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/etc/kubernetes",
    "/home",
)

SECRET_NAME_WORDS: tuple[str, ...] = (
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "CREDENTIALS",
)

# Suffixes that say the variable is *about* a secret, not the secret: PASSWORD_FILE=/run/..., TOKEN_TTL=3600.
SECRET_NAME_SAFE_SUFFIXES: tuple[str, ...] = (
    "FILE",
    "PATH",
    "DIR",
    "TTL",
    "TIMEOUT",
    "EXPIRY",
    "EXPIRES",
    "LENGTH",
    "LEN",
    "MIN",
    "MAX",
    "URL_PATH",
    "ENDPOINT",
    "HEADER",
    "TYPE",
    "ENABLED",
    "POLICY",
    "ALGORITHM",
    "NAME",
    "USER",
    "USERNAME",
    "ID",
    "REF",
    "KEY_ID",
    "SECONDS",
    "DAYS",
    "HOURS",
    "COUNT",
    "SIZE",
    "VERSION",
    "PORT",
    "RETRIES",
    "MODE",
)


@dataclass(frozen=True, slots=True)
class PortAllowRule:
    """Ports a selected container (or, with `node`, a node process by comm) may listen on.

    Globs as in suppressions; `ports` are "8080/tcp" or "53/udp" (or "8080" for tcp).
    """

    ports: tuple[str, ...]
    namespace: str = "*"
    name: str = "*"  # container name glob; for node rules the process comm
    image: str = "*"
    labels: tuple[tuple[str, str], ...] = ()
    node: bool = False


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Parameters of the network checks (open-port, plaintext, cert-expiry, host-port)."""

    allowed_ports: tuple[PortAllowRule, ...] = ()
    # Docker's published/exposed ports are declared intent: listening on them is not an open-port finding.
    allow_declared_ports: bool = True
    # A loopback listener is reachable only from inside its namespace; flag it only when asked.
    open_port_include_loopback: bool = False
    # 30/7 days: cert-manager renews at 2/3 of a 90-day life (30 days left); 7 days leaves a working week.
    cert_warning_days: int = 30
    cert_critical_days: int = 7


@dataclass(frozen=True, slots=True)
class KubePolicy:
    """Parameters of the Kubernetes-object checks (stale-secret, rbac-overprivileged, plaintext on config)."""

    # 90 days: the rotation period of CIS/NIST-style credential policies and of cert-manager's default cert life.
    secret_max_age_days: int = 90
    # Per Secret type; 0 = not judged. Helm release records and legacy SA tokens are not rotated credentials
    # (legacy-sa-token reports the latter on its own).
    secret_max_age_by_type: tuple[tuple[str, int], ...] = (
        ("helm.sh/release.v1", 0),
        ("kubernetes.io/service-account-token", 0),
    )
    istio_root_namespace: str = "istio-system"  # where a selector-less PeerAuthentication is mesh-wide
    # Bindings the API server reconciles itself (system:*) are the platform's, not the operator's choice.
    rbac_ignored_binding_prefixes: tuple[str, ...] = ("system:",)

    def secret_max_age(self, secret_type: str) -> int:
        for t, days in self.secret_max_age_by_type:
            if t == secret_type:
                return days
        return self.secret_max_age_days


@dataclass(frozen=True, slots=True)
class Policy:
    dangerous_capabilities: tuple[str, ...] = DANGEROUS_CAPABILITIES
    sensitive_host_paths: tuple[str, ...] = SENSITIVE_HOST_PATHS
    secret_name_words: tuple[str, ...] = SECRET_NAME_WORDS
    secret_name_safe_suffixes: tuple[str, ...] = SECRET_NAME_SAFE_SUFFIXES
    # Registries whose mutable tags are accepted (e.g. an internal registry with immutable tags).
    trusted_mutable_registries: tuple[str, ...] = ()
    network: NetworkPolicy = NetworkPolicy()  # listeners: allowlists, cert thresholds
    kube: KubePolicy = KubePolicy()  # Kubernetes objects: secret age, RBAC, mesh

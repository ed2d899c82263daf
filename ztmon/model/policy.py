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
)


@dataclass(frozen=True, slots=True)
class Policy:
    dangerous_capabilities: tuple[str, ...] = DANGEROUS_CAPABILITIES
    sensitive_host_paths: tuple[str, ...] = SENSITIVE_HOST_PATHS
    secret_name_words: tuple[str, ...] = SECRET_NAME_WORDS
    secret_name_safe_suffixes: tuple[str, ...] = SECRET_NAME_SAFE_SUFFIXES
    # Registries whose mutable tags are accepted (e.g. an internal registry with immutable tags).
    trusted_mutable_registries: tuple[str, ...] = ()

"""host-path: sensitive host paths bind-mounted; "/" only exactly, other paths and anything below them."""

from __future__ import annotations

import pytest

from ztmon.checks.host_path import sensitive_match
from ztmon.model.findings import Severity
from ztmon.model.inventory import Mount
from ztmon.model.policy import SENSITIVE_HOST_PATHS


def bind(source: str, destination: str = "/mnt", *, read_only: bool = False, type_: str = "bind") -> Mount:
    return Mount(source=source, destination=destination, type=type_, read_only=read_only)


@pytest.mark.parametrize(
    ("source", "severity", "matched"),
    [
        ("/", Severity.CRITICAL, "/"),
        ("/var/run/docker.sock", Severity.CRITICAL, "/var/run/docker.sock"),
        ("/run/docker.sock", Severity.CRITICAL, "/run/docker.sock"),
        ("/var/run", Severity.CRITICAL, "/var/run"),
        ("/run", Severity.CRITICAL, "/run"),
        ("/run/containerd", Severity.CRITICAL, "/run/containerd"),
        ("/run/containerd/containerd.sock", Severity.CRITICAL, "/run/containerd"),
        ("/var/run/containerd/containerd.sock", Severity.CRITICAL, "/var/run/containerd"),
        ("/var/run/crio/crio.sock", Severity.CRITICAL, "/var/run/crio"),
        ("/var/run/foo", Severity.HIGH, "/var/run"),
        ("/run/user/1000", Severity.HIGH, "/run"),
        ("/etc", Severity.HIGH, "/etc"),
        ("/etc/ssl", Severity.HIGH, "/etc"),
        ("/etc/ssl/", Severity.HIGH, "/etc"),
        ("//etc/./ssl", Severity.HIGH, "/etc"),
        ("/etc/kubernetes/pki", Severity.HIGH, "/etc/kubernetes"),  # the most specific listed path
        ("/proc", Severity.HIGH, "/proc"),
        ("/sys/fs/cgroup", Severity.HIGH, "/sys"),
        ("/dev", Severity.HIGH, "/dev"),
        ("/root/.ssh", Severity.HIGH, "/root"),
        ("/boot", Severity.HIGH, "/boot"),
        ("/home/alice/src", Severity.HIGH, "/home"),
        ("/var/lib/kubelet/pods", Severity.HIGH, "/var/lib/kubelet"),
        ("/var/lib/docker", Severity.HIGH, "/var/lib/docker"),
    ],
)
def test_host_path_flags_sensitive_source(check, container, source, severity, matched):
    (f,) = check("host-path", container(mounts=(bind(source),)))
    assert f.severity is severity
    assert dict(f.evidence)["matched"] == matched


@pytest.mark.parametrize("source", ["/data", "/srv/app", "/etcetera", "/opt/etc", "/var/lib/app", "/tmp/x"])
def test_host_path_passes_other_sources(check, container, source):
    assert check("host-path", container(mounts=(bind(source),))) == []


@pytest.mark.parametrize("type_", ["volume", "tmpfs", "npipe", "cluster"])
def test_host_path_ignores_non_bind_mounts(check, container, type_):
    assert check("host-path", container(mounts=(bind("/", type_=type_),))) == []


def test_host_path_kubernetes_host_path_counts_as_bind(check, container):
    (f,) = check("host-path", container(mounts=(bind("/", type_="hostPath"),)))
    assert f.severity is Severity.CRITICAL


def test_host_path_evidence_keys(check, container):
    (f,) = check("host-path", container(mounts=(bind("/etc/ssl", "/certs", read_only=True),)))
    assert dict(f.evidence) == {
        "host_path": "/etc/ssl",
        "mount_path": "/certs",
        "read_only": "true",
        "matched": "/etc",
    }


def test_host_path_read_only_socket_is_still_critical(check, container):
    (f,) = check("host-path", container(mounts=(bind("/var/run/docker.sock", read_only=True),)))
    assert f.severity is Severity.CRITICAL
    assert f.message.endswith("(read-only)")


def test_host_path_one_finding_per_mount_with_distinct_ids(check, container):
    mounts = (bind("/etc", "/a"), bind("/etc", "/b"), bind("/proc", "/a"), bind("/data", "/c"))
    findings = check("host-path", container(mounts=mounts))
    assert [(dict(f.evidence)["host_path"], dict(f.evidence)["mount_path"]) for f in findings] == [
        ("/etc", "/a"),
        ("/etc", "/b"),
        ("/proc", "/a"),
    ]
    assert len({f.id for f in findings}) == 3


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("/", "/"),
        ("/anything", None),  # "/" matches only itself
        ("/etc/ssl/certs", "/etc"),
        ("/var/run/docker.sock", "/var/run/docker.sock"),
        ("/var/runner", None),
    ],
)
def test_sensitive_match(path, matched):
    assert sensitive_match(path, SENSITIVE_HOST_PATHS) == matched


def test_host_path_crio_socket_under_run_is_critical(check, container):
    (f,) = check("host-path", container(mounts=(bind("/run/crio/crio.sock"),)))
    assert f.severity is Severity.CRITICAL

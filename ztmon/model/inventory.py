"""What the sources saw: an immutable Snapshot that every check reads.

Secret *values* never enter these types: an environment variable is kept as its name, a coarse
classification of its value and the names of the detectors that flagged it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ztmon.model.baseline import BaselineView, ContainerFsChanges
from ztmon.model.kube import KubeObjects
from ztmon.model.network import Listener, NetNamespace, PlaintextFlow, ProcessPosture
from ztmon.model.policy import Policy


class ValueKind(enum.StrEnum):
    """Shape of an environment variable's value, decided where the value was read."""

    EMPTY = "empty"
    REFERENCE = "reference"  # valueFrom (secretKeyRef, ...) or a ${VAR} placeholder: no literal secret
    PATH = "path"  # an absolute path, e.g. PASSWORD_FILE=/run/secrets/db
    NUMBER = "number"
    BOOLEAN = "boolean"
    LITERAL = "literal"  # anything else: a literal value was given


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    kind: ValueKind
    detectors: tuple[str, ...] = ()  # detect-secrets detectors that flagged the value


@dataclass(frozen=True, slots=True)
class Mount:
    source: str  # host path for bind mounts, volume name otherwise
    destination: str
    type: str  # bind | volume | tmpfs | hostPath | ...
    read_only: bool


@dataclass(frozen=True, slots=True)
class PublishedPort:
    container_port: int
    protocol: str  # tcp | udp | sctp
    host_ip: str  # "" or "0.0.0.0" / "::" means every host interface
    host_port: int


@dataclass(frozen=True, slots=True)
class Container:
    """One running container, as declared by its runtime (Docker inspect, pod spec)."""

    runtime: str  # docker | containerd | cri-o | podman | kubernetes
    id: str  # full runtime id ("" for an offline manifest)
    name: str
    image: str  # reference as given, e.g. "nginx:1.27" or "repo@sha256:..."
    image_digest: str = ""  # sha256:... of the image the container runs, when known
    labels: tuple[tuple[str, str], ...] = ()
    namespace: str = ""
    pod: str = ""
    read_only_rootfs: bool = False
    privileged: bool = False
    user: str = ""  # "" means the image default, i.e. root unless the image says otherwise
    image_user: str = ""  # USER of the image config when known
    run_as_non_root: bool = False  # Kubernetes runAsNonRoot: the kubelet refuses uid 0
    cap_add: tuple[str, ...] = ()  # normalised: upper case without CAP_ prefix
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    mounts: tuple[Mount, ...] = ()
    ports: tuple[PublishedPort, ...] = ()
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"
    env: tuple[EnvVar, ...] = ()
    started_at: datetime | None = None
    observed: ProcessPosture | None = None  # runtime truth from /proc (procfs source); None = not observed
    # Kubernetes: the owning workload (Deployment via ReplicaSet, StatefulSet, ...; "Pod" for a bare pod),
    # the container's place in the pod spec, the pod's annotations, and file:line for manifests.
    workload_kind: str = ""
    workload_name: str = ""
    container_type: str = ""  # "" | "init" | "ephemeral"
    annotations: tuple[tuple[str, str], ...] = ()
    origin: str = ""

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    kernel: str = ""
    os_image: str = ""
    runtime_version: str = ""


@dataclass(frozen=True, slots=True)
class SourcePart:
    """The last good state of one source: what it contributes to a Snapshot."""

    containers: tuple[Container, ...] = ()
    node: Node | None = None
    listeners: tuple[Listener, ...] = ()
    namespaces: tuple[NetNamespace, ...] = ()
    postures: tuple[ProcessPosture, ...] = ()  # joined to containers by id in the pipeline
    flows: tuple[PlaintextFlow, ...] = ()
    kube: KubeObjects | None = None  # Kubernetes objects (kube and files sources)
    baseline: BaselineView | None = None  # the baseline source: documents, learned workloads, modes
    fs_changes: tuple[ContainerFsChanges, ...] = ()  # writable-layer changes (fschanges source)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the checks may read. Immutable; `taken_at` is the only clock a check sees."""

    taken_at: datetime
    node: Node
    containers: tuple[Container, ...] = ()
    policy: Policy = field(default_factory=Policy)
    listeners: tuple[Listener, ...] = ()
    namespaces: tuple[NetNamespace, ...] = ()
    flows: tuple[PlaintextFlow, ...] = ()
    kube: KubeObjects = field(default_factory=KubeObjects)
    baseline: BaselineView | None = None  # None: no baseline configured, drift checks stay silent
    fs_changes: tuple[ContainerFsChanges, ...] = ()  # joined to containers by id

"""The node's runtime truth from /proc: listeners per network namespace, their owners, process posture.

Under an injectable root (default /proc; a DaemonSet mounts the host's with hostPID):

1. every process is grouped by network namespace (the link /proc/<pid>/ns/net; where unreadable, by
   container id from /proc/<pid>/cgroup, the rest being the node's);
2. each namespace's listening TCP and bound UDP sockets are listed once: through netlink sock_diag on a
   socket made inside it (needs CAP_SYS_ADMIN), else by parsing /proc/<pid>/net/{tcp,tcp6,udp,udp6};
3. socket inodes are mapped to a process (pid, comm) through /proc/<pid>/fd where readable;
4. each container's main process gives its runtime posture (/proc/<pid>/status and mountinfo);
5. optionally the TCP listeners are probed for TLS (tlsprobe).

Processes exit mid-scan all the time: ENOENT and ESRCH are expected and skipped. Any other odd input
is counted per kind and logged once.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import structlog

from ztmon.model.inventory import Node, SourcePart
from ztmon.model.network import Listener, NetNamespace, ProcessPosture
from ztmon.sources import cgroups, sockdiag, tlsprobe
from ztmon.sources.base import Source

log = structlog.get_logger("ztmon.sources.procfs")

Listing = Literal["auto", "sock_diag", "proc"]
_GONE = (errno.ENOENT, errno.ESRCH)

# Capability numbers (linux/capability.h) -> names without CAP_, as in Docker's cap_add.
CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)  # fmt: skip


# -- pure parsers ------------------------------------------------------------------------------------
def _hex_address(text: str) -> str:
    """/proc/net/tcp address: 8 hex digits (IPv4) or 32 (IPv6), each 32-bit word in host byte order."""
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    raise ValueError(f"address of {len(raw)} bytes")


def parse_net_table(text: str, protocol: str) -> tuple[list[sockdiag.SockEntry], int]:
    """LISTEN (tcp) or unconnected (udp) sockets from /proc/<pid>/net/{tcp,tcp6,udp,udp6}: (entries, odd lines)."""
    want = "0A" if protocol == "tcp" else "07"
    out: list[sockdiag.SockEntry] = []
    odd = 0
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            if line.strip():
                odd += 1
            continue
        if parts[3] != want:
            continue
        try:
            addr, _, port_hex = parts[1].partition(":")
            port = int(port_hex, 16)
            if protocol == "udp" and not parts[2].endswith(":0000"):
                continue  # connected UDP: a client, not a bound service
            out.append(sockdiag.SockEntry(protocol, _hex_address(addr), port, int(parts[9]), int(parts[7])))
        except ValueError:
            odd += 1
    return out, odd


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def capabilities(mask_hex: str) -> tuple[str, ...]:
    """'00000000a80425fb' -> ('CHOWN', ...). Unknown high bits are named CAP_<n>."""
    mask = int(mask_hex, 16)
    names = []
    n = 0
    while mask:
        if mask & 1:
            names.append(CAPABILITIES[n] if n < len(CAPABILITIES) else f"CAP_{n}")
        mask >>= 1
        n += 1
    return tuple(sorted(names))


def posture_from_status(text: str, *, container_id: str, pid: int) -> ProcessPosture:
    fields = parse_status(text)
    eff: tuple[str, ...] = ()
    bnd: tuple[str, ...] = ()
    nnp: bool | None = None
    seccomp: int | None = None
    uids: tuple[int, ...] = ()
    try:
        if "CapEff" in fields:
            eff = capabilities(fields["CapEff"])
        if "CapBnd" in fields:
            bnd = capabilities(fields["CapBnd"])
        if "NoNewPrivs" in fields:
            nnp = fields["NoNewPrivs"] == "1"
        if "Seccomp" in fields:
            seccomp = int(fields["Seccomp"])
        if "Uid" in fields:
            uids = tuple(int(x) for x in fields["Uid"].split())
    except ValueError:
        pass
    return ProcessPosture(
        container_id=container_id, pid=pid, cap_effective=eff, cap_bounding=bnd, no_new_privs=nnp, seccomp=seccomp,
        uids=uids,
    )  # fmt: skip


def rootfs_read_only(mountinfo: str) -> bool | None:
    """Is "/" read-only? The last mount on "/" wins (a later mount covers an earlier one)."""
    found: bool | None = None
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[4] != "/":
            continue
        opts = set(parts[5].split(","))
        sep = parts.index("-") if "-" in parts else -1
        if sep >= 0 and len(parts) > sep + 3:
            opts |= set(parts[sep + 3].split(","))
        found = "ro" in opts
    return found


def parse_fib_trie_local(text: str) -> list[str]:
    """Local IPv4 addresses of a namespace from /proc/<pid>/net/fib_trie ("/32 host LOCAL" entries)."""
    out: list[str] = []
    last = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("|--", "+--")):
            last = s.split()[1] if len(s.split()) > 1 else ""
        elif s == "/32 host LOCAL" and last and not last.startswith("127.") and last not in out:
            out.append(last)
    return out


def parse_if_inet6(text: str) -> list[str]:
    """Global (scope 00) IPv6 addresses of a namespace from /proc/<pid>/net/if_inet6."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and len(parts[0]) == 32 and parts[3] == "00":
            try:
                out.append(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(parts[0])))
            except ValueError:
                continue
    return [a for a in out if a != "::1"]


# -- the scan ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Oddities:
    """Odd items per kind: counted every scan, logged once per kind."""

    counts: dict[str, int] = field(default_factory=dict)
    _logged: set[str] = field(default_factory=set)

    def add(self, kind: str, detail: str = "", n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n
        if kind not in self._logged:
            self._logged.add(kind)
            log.info("procfs_odd_input", kind=kind, detail=detail)


@dataclass(slots=True)
class _Proc:
    pid: int
    netns: str
    cgroup: cgroups.CgroupInfo


@dataclass(slots=True)
class Inventory:
    listeners: list[Listener]
    namespaces: list[NetNamespace]
    postures: list[ProcessPosture]
    method: str  # sock_diag | proc | mixed


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:  # noqa: PTH123 - os-level paths, tight loop
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        if e.errno in _GONE:
            return None
        raise


class Scanner:
    """One inventory of the node; `worker` is None where namespaces cannot be entered."""

    def __init__(
        self,
        *,
        proc_root: Path,
        worker: sockdiag.NetnsWorker | None,
        listing: Listing = "auto",
        map_processes: bool = True,
        postures: bool = True,
        addresses: bool = True,
        oddities: Oddities | None = None,
    ) -> None:
        self.root = str(proc_root)
        self.worker = worker
        self.listing = listing
        self.map_processes = map_processes
        self.postures = postures
        self.addresses = addresses
        self.odd = oddities or Oddities()
        self.own_netns = self._own_netns()
        # socket inode -> pid from earlier scans: a steady node's listeners keep their inodes, so after the
        # first (full, parallel) fd walk only new sockets are looked up, in their own namespace's processes.
        self._owners: dict[int, int] = {}
        self._comms: dict[int, str] = {}
        self._walked = False
        self._listeners: dict[int, Listener] = {}  # by inode: unchanged listeners are reused, not rebuilt
        self._addresses: dict[str, tuple[str, ...]] = {}  # by namespace id: a pod keeps its addresses

    def _own_netns(self) -> str:
        try:
            return os.readlink("/proc/self/ns/net")  # noqa: PTH115 - os-level, as in the scan loop
        except OSError:
            return ""

    def ns_path(self, ns: NetNamespace) -> str:
        return f"{self.root}/{ns.pid}/ns/net"

    def processes(self) -> list[_Proc]:
        out = []
        try:
            names = os.listdir(self.root)  # noqa: PTH208 - os-level calls: the scan loop is hot
        except OSError as e:
            raise OSError(e.errno, f"{self.root}: {e.strerror}") from None
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                text = _read(f"{self.root}/{name}/cgroup")
            except OSError as e:
                self.odd.add("cgroup-unreadable", f"{name}: {e.strerror}")
                text = ""
            if text is None:
                continue  # exited
            try:
                netns = os.readlink(f"{self.root}/{name}/ns/net")  # noqa: PTH115
            except OSError:
                # EACCES without CAP_SYS_PTRACE: group by container below. (ENOENT: it exited just now;
                # its group then lists nothing, which is harmless.)
                netns = ""
            out.append(_Proc(pid, netns, cgroups.parse(text)))
        out.sort(key=lambda p: p.pid)
        return out

    def namespaces(self, procs: list[_Proc]) -> tuple[list[NetNamespace], dict[int, str]]:
        """Namespaces and each pid's namespace id.

        Host = the namespace of kthreadd (pid 2: kernel threads always live in the initial namespaces),
        else of pid 1, else of the lowest pid.
        """
        readable = {p.pid: p.netns for p in procs if p.netns}
        host_ns = readable.get(2) or readable.get(1) or (procs[0].netns if procs else "") or "host"
        groups: dict[str, list[_Proc]] = {}
        pid_ns: dict[int, str] = {}
        for p in procs:
            if p.netns:
                key = p.netns
            elif p.cgroup.container_id:
                key = f"cgroup:{p.cgroup.container_id}"
            else:
                key = host_ns
            pid_ns[p.pid] = key
            groups.setdefault(key, []).append(p)
        out = []
        for key, members in groups.items():
            cids = sorted({m.cgroup.container_id for m in members if m.cgroup.container_id})
            pods = sorted({m.cgroup.pod_uid for m in members if m.cgroup.pod_uid})
            # the oldest pid whose namespace link we could read: most likely to stay, and enterable
            rep = next((m.pid for m in members if m.netns), members[0].pid)
            out.append(
                NetNamespace(
                    id=key, pid=rep, host=(key == host_ns), container_ids=tuple(cids), pod_uid=pods[0] if pods else ""
                )
            )
        return out, pid_ns

    def _proc_listing(self, ns: NetNamespace) -> list[sockdiag.SockEntry] | None:
        entries: list[sockdiag.SockEntry] = []
        for name, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
            try:
                text = _read(f"{self.root}/{ns.pid}/net/{name}")
            except OSError as e:
                self.odd.add("net-table-unreadable", f"{ns.pid}/net/{name}: {e.strerror}")
                continue
            if text is None:
                if name == "tcp":
                    return None  # the process exited: try another member next scan
                continue
            found, odd = parse_net_table(text, proto)
            if odd:
                self.odd.add("net-table-odd-line", f"{ns.pid}/net/{name}", odd)
            entries.extend(found)
        return entries

    def list_sockets(self, namespaces: list[NetNamespace]) -> tuple[dict[str, list[sockdiag.SockEntry]], str]:
        use_diag = self.listing != "proc" and self.worker is not None and not self.worker.broken
        out: dict[str, list[sockdiag.SockEntry]] = {}
        methods: set[str] = set()
        pending: list[NetNamespace] = []
        for ns in namespaces:
            if use_diag and ns.id == self.own_netns:
                try:
                    out[ns.id] = sockdiag.dump_current()
                    methods.add("sock_diag")
                    continue
                except OSError as e:
                    self.odd.add("sock-diag-failed", str(e))
            if use_diag and not ns.id.startswith("cgroup:"):
                pending.append(ns)
            else:
                pending.append(replace(ns, id="\0" + ns.id))  # marker: /proc fallback
        diag = [ns for ns in pending if not ns.id.startswith("\0")]
        if diag and self.worker is not None:
            jobs: list[tuple[str, Callable[[], list[sockdiag.SockEntry]]]] = [
                (self.ns_path(ns), sockdiag.dump_current) for ns in diag
            ]
            try:
                results = self.worker.map_in(jobs)
            except sockdiag.WorkerBrokenError as e:
                self.odd.add("netns-worker-broken", str(e))
                results = [e] * len(diag)
            for ns, res in zip(diag, results, strict=True):
                if isinstance(res, BaseException):
                    if not (isinstance(res, OSError) and res.errno in _GONE):
                        self.odd.add("sock-diag-failed", f"{type(res).__name__}: {res}")
                    fallback = self._proc_listing(ns)
                    if fallback is not None:
                        out[ns.id] = fallback
                        methods.add("proc")
                else:
                    out[ns.id] = res
                    methods.add("sock_diag")
        for marked in pending:
            if marked.id.startswith("\0"):
                ns = replace(marked, id=marked.id[1:])
                found = self._proc_listing(ns)
                if found is not None:
                    out[ns.id] = found
                    methods.add("proc")
        method = "mixed" if len(methods) > 1 else (methods.pop() if methods else "none")
        return out, method

    def socket_owners(self, pids: Iterable[int]) -> dict[int, int]:
        """socket inode -> the lowest pid holding it, from /proc/<pid>/fd (readlink relative to the fd dir).

        Runs on its own thread while the namespaces are dumped: it does not need the dump's result.
        """
        owners: dict[int, int] = {}
        for pid in pids:
            try:
                dfd = os.open(f"{self.root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as e:
                if e.errno not in _GONE:
                    self.odd.add("fd-unreadable", f"{pid}: {e.strerror}")
                continue
            try:
                fds = os.listdir(dfd)  # noqa: PTH208
                for fd in fds:
                    try:
                        target = os.readlink(fd, dir_fd=dfd)
                    except OSError:
                        continue
                    if target.startswith("socket:["):
                        try:
                            owners.setdefault(int(target[8:-1]), pid)
                        except ValueError:
                            continue
            except OSError:
                continue  # exited while we looked
            finally:
                os.close(dfd)
        return owners

    def _resolve_owners(
        self,
        sockets: dict[str, list[sockdiag.SockEntry]],
        walked: dict[int, int],
        by_pid: dict[int, _Proc],
        pid_ns: dict[int, str],
    ) -> dict[int, int]:
        """Owners of the listed sockets: the cold walk's, else the cache's (pid still alive), else a walk of
        the socket's own namespace's processes. The cache keeps only current sockets."""
        owners: dict[int, int] = {}
        missing: dict[str, set[int]] = {}
        for ns_id, entries in sockets.items():
            for e in entries:
                if walked:
                    owners[e.inode] = walked.get(e.inode, 0)
                    continue
                pid = self._owners.get(e.inode)
                if pid is not None and (pid == 0 or pid in by_pid):
                    owners[e.inode] = pid  # 0: looked for before and not found (fd unreadable)
                elif e.inode:
                    missing.setdefault(ns_id, set()).add(e.inode)
        if missing:
            pids = [pid for pid, ns_id in pid_ns.items() if ns_id in missing]
            found = self.socket_owners(sorted(pids))
            for inodes in missing.values():
                for ino in inodes:
                    owners[ino] = found.get(ino, 0)
        self._owners = owners
        return owners

    def comm(self, pid: int) -> str:
        try:
            return (_read(f"{self.root}/{pid}/comm") or "").strip()
        except OSError:
            return ""

    def posture(self, container_id: str, pid: int) -> ProcessPosture | None:
        try:
            status = _read(f"{self.root}/{pid}/status")
            if status is None:
                return None
            posture = posture_from_status(status, container_id=container_id, pid=pid)
            mountinfo = _read(f"{self.root}/{pid}/mountinfo")
        except OSError as e:
            self.odd.add("status-unreadable", f"{pid}: {e.strerror}")
            return None
        if mountinfo is not None:
            posture = replace(posture, rootfs_read_only=rootfs_read_only(mountinfo))
        return posture

    def local_addresses(self, ns: NetNamespace) -> tuple[str, ...]:
        try:
            v4 = parse_fib_trie_local(_read(f"{self.root}/{ns.pid}/net/fib_trie") or "")
            v6 = parse_if_inet6(_read(f"{self.root}/{ns.pid}/net/if_inet6") or "")
        except OSError:
            return ()
        return tuple(v4 + v6)

    def scan(self) -> Inventory:
        procs = self.processes()
        namespaces, pid_ns = self.namespaces(procs)
        by_pid = {p.pid: p for p in procs}
        cold = self.map_processes and not self._walked
        self._walked = self._walked or cold
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ztmon-fdwalk") as pool:
            walking = pool.submit(self.socket_owners, [p.pid for p in procs]) if cold else None
            sockets, method = self.list_sockets(namespaces)
            owners = walking.result() if walking is not None else {}
        if self.map_processes:
            owners = self._resolve_owners(sockets, owners, by_pid, pid_ns)
        comms = {pid: c for pid, c in self._comms.items() if pid in by_pid}
        reused = self._listeners
        seen: set[int] = set()
        listeners: list[Listener] = []
        for ns in namespaces:
            for e in sockets.get(ns.id, ()):
                if e.inode and e.inode in seen:
                    continue  # the same socket seen from two groups (only when grouping by cgroup)
                seen.add(e.inode)
                pid = owners.get(e.inode, 0)
                owner = by_pid.get(pid)
                cid = owner.cgroup.container_id if owner is not None else ""
                if not cid and len(ns.container_ids) == 1 and not ns.host:
                    cid = ns.container_ids[0]
                if pid and pid not in comms:
                    comms[pid] = self.comm(pid)
                pod_uid = (owner.cgroup.pod_uid if owner is not None else "") or ns.pod_uid
                old = reused.get(e.inode)
                if (
                    old is not None
                    and (old.netns, old.protocol, old.address, old.port, old.pid) == (ns.id, *e[:3], pid)
                    and (old.container_id, old.container_ids, old.pod_uid) == (cid, ns.container_ids, pod_uid)
                    and (old.comm, old.host_netns) == (comms.get(pid, ""), ns.host)
                ):
                    listeners.append(old)
                    continue
                listeners.append(
                    Listener(
                        netns=ns.id,
                        protocol=e.protocol,
                        address=e.address,
                        port=e.port,
                        inode=e.inode,
                        host_netns=ns.host,
                        container_id=cid,
                        container_ids=ns.container_ids,
                        pod_uid=pod_uid,
                        pid=pid,
                        comm=comms.get(pid, ""),
                    )
                )
        listeners.sort(key=lambda li: (li.netns, li.protocol, li.port, li.address))
        self._comms = comms
        self._listeners = {li.inode: li for li in listeners if li.inode}
        if self.addresses:
            known = self._addresses
            self._addresses = {ns.id: known[ns.id] if ns.id in known else self.local_addresses(ns) for ns in namespaces}
            namespaces = [replace(ns, addresses=self._addresses[ns.id]) for ns in namespaces]
        postures: list[ProcessPosture] = []
        if self.postures:
            main: dict[str, int] = {}
            for p in procs:  # sorted by pid: the lowest pid of a container is its main process
                if p.cgroup.container_id and not p.cgroup.monitor:
                    main.setdefault(p.cgroup.container_id, p.pid)
            for cid, pid in sorted(main.items()):
                got = self.posture(cid, pid)
                if got is not None:
                    postures.append(got)
        return Inventory(listeners, namespaces, postures, method)


class ProcfsSource(Source):
    name = "procfs"
    refresh_on_change = True  # a new container's listeners show up with its docker event

    def __init__(
        self,
        *,
        proc_root: Path = Path("/proc"),
        listing: Listing = "auto",
        map_processes: bool = True,
        postures: bool = True,
        probe: bool = True,
        probe_timeout: float = 1.5,
        probe_banner_wait: float = 0.3,
        probe_concurrency: int = 384,
        probe_rate: float = 2000.0,
        probe_cache_ttl: float = 3600.0,
    ) -> None:
        super().__init__()
        self._root = proc_root
        self._listing: Listing = listing
        self._map_processes = map_processes
        self._postures = postures
        self._probe_enabled = probe
        self._probe_opts = (probe_timeout, probe_banner_wait, probe_concurrency, probe_rate, probe_cache_ttl)
        self._worker: sockdiag.NetnsWorker | None = None
        self._can_enter: bool | None = None
        self._scanner: Scanner | None = None
        self._prober: tlsprobe.Prober | None = None
        self.oddities = Oddities()
        self.method = ""
        self._part = SourcePart(node=Node(name=""))

    def odd_inputs(self) -> dict[str, int]:
        return self.oddities.counts

    def part(self) -> SourcePart:
        return self._part

    def _setup(self) -> Scanner:
        if self._scanner is None:
            if self._listing != "proc":
                worker = sockdiag.NetnsWorker()
                self._can_enter = worker.can_enter()
                if self._can_enter:
                    self._worker = worker
                else:
                    worker.close()
                    log.info("procfs_no_setns", detail="no CAP_SYS_ADMIN: listing through /proc/<pid>/net")
            else:
                self._can_enter = False
            self._scanner = Scanner(
                proc_root=self._root,
                worker=self._worker,
                listing=self._listing,
                map_processes=self._map_processes,
                postures=self._postures,
                oddities=self.oddities,
            )
        return self._scanner

    def _prober_for(self, scanner: Scanner) -> tlsprobe.Prober:
        if self._prober is None:
            timeout, banner_wait, concurrency, rate, ttl = self._probe_opts
            worker = self._worker
            factory = (
                (worker.socket_in) if worker is not None else None
            )  # fmt: skip
            self._prober = tlsprobe.Prober(
                probe=tlsprobe.Probe(timeout=timeout, banner_wait=banner_wait, socket_factory=factory),
                own_netns=scanner.own_netns,
                can_enter=bool(self._can_enter),
                ns_path=scanner.ns_path,
                concurrency=concurrency,
                rate_per_second=rate,
                cache_ttl=ttl,
            )
        return self._prober

    @property
    def prober(self) -> tlsprobe.Prober | None:
        return self._prober

    async def refresh(self) -> None:
        scanner = await asyncio.to_thread(self._setup)
        inventory = await asyncio.to_thread(scanner.scan)
        listeners = inventory.listeners
        if self._probe_enabled:
            listeners = await self._prober_for(scanner).probe_all(listeners, inventory.namespaces)
        self.method = inventory.method
        self._part = SourcePart(
            node=Node(name=""),
            listeners=tuple(listeners),
            namespaces=tuple(inventory.namespaces),
            postures=tuple(inventory.postures),
        )
        self.mark_up()

    async def close(self) -> None:
        if self._worker is not None:
            await asyncio.to_thread(self._worker.close)
            self._worker = None

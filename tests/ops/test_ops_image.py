"""The Dockerfile: hadolint-clean, non-root, read-only-ready, labelled; and the proof that the installed
wheel runs on a read-only root as a non-root user, on the real dockerd.

No base image can be pulled here, so the proof image is built FROM scratch the way the Dockerfile's
stages work: the same wheel (built from the same three inputs the Dockerfile copies), installed with its
dependencies, next to the interpreter that runs these tests (its stdlib and the shared libraries that
`ldd` names). It is cached by the hash of its inputs, so a second run costs one `docker image inspect`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opslib import ROOT, run

DOCKERFILE = ROOT / "Dockerfile"
UID = "65532:65532"
REPO = "ztmon-ops/readonly"  # and ztmon-ops/readonly-base: interpreter + dependencies
STDLIB_SKIP = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
HARDENED = ("--read-only", "--user", UID, "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_is_clean(hadolint: str) -> None:
    run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)])


def test_multi_stage_build_then_slim_runtime() -> None:
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith(" AS build")
    assert froms[1].endswith(" AS runtime")
    second_from = [i for i, (w, _) in enumerate(instructions()) if w == "FROM"][1]
    runtime = instructions()[second_from:]
    assert not [r for w, r in runtime if w == "RUN"], "the runtime stage only copies: no build tools, no shell needed"
    copies = [r for w, r in runtime if w == "COPY"]
    assert copies
    assert all(c.startswith("--from=build") for c in copies)


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users == [UID]
    assert [r for w, r in instructions() if w == "ENTRYPOINT"] == ['["ztmon"]']


def test_oci_labels() -> None:
    labels = " ".join(rest for word, rest in instructions() if word == "LABEL")
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_no_secrets_in_layers() -> None:
    for word, rest in instructions():
        if word in {"ENV", "ARG"}:
            assert not re.search(r"(?i)(password|secret|token|api_?key)", rest), rest
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*", "deny by default"
    assert [p for p in ignore if p.startswith("!")] == ["!pyproject.toml", "!README.md", "!ztmon/"]
    copied = [rest for word, rest in instructions() if word == "COPY" and not rest.startswith("--from")]
    assert copied == ["pyproject.toml README.md ./", "ztmon ./ztmon"]


# -- the read-only proof --------------------------------------------------------------------------


def _digest(paths: list[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    for e in extra:
        h.update(e.encode() + b"\0")
    return h.hexdigest()[:16]


def _shared_libraries(files: list[Path]) -> set[Path]:
    libs: set[Path] = set()
    for f in files:
        proc = subprocess.run(["ldd", str(f)], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                libs.add(Path(m.group(1)))
    return libs


def _copy(src: Path, rootfs: Path) -> None:
    dst = rootfs / src.relative_to("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.resolve(), dst)


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
PYTHON = Path(os.path.realpath(sys.executable))


def _wheel(work: Path) -> Path:
    """The Dockerfile's build stage: a wheel from exactly what the Dockerfile copies."""
    src = work / "src"
    src.mkdir(parents=True)
    shutil.copy2(ROOT / "pyproject.toml", src)
    shutil.copy2(ROOT / "README.md", src)
    shutil.copytree(ROOT / "ztmon", src / "ztmon", ignore=shutil.ignore_patterns("__pycache__"))
    run([*PIP, "wheel", "--no-deps", "-w", str(work / "wheels"), str(src)], timeout=300)
    (wheel,) = (work / "wheels").glob("ztmon-*.whl")
    return wheel


def _docker_build(tag: str, ctx: Path, dockerfile: str) -> None:
    (ctx / "Dockerfile").write_text(dockerfile)
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    run(["docker", "build", "-q", "--label", "ztmon.test=1", "-t", tag, str(ctx)], env=env, timeout=600)


def _build_base(tag: str, wheel: Path, work: Path) -> None:
    """Interpreter, stdlib, shared libraries and ztmon's dependencies (changes with pyproject.toml only)."""
    rootfs = work / "base" / "rootfs"
    site = rootfs / "opt" / "ztmon" / "site"
    run([*PIP, "install", "--no-warn-script-location", "--target", str(site), str(wheel)], timeout=600)
    for p in [*site.glob("ztmon"), *site.glob("ztmon-*.dist-info"), *site.glob("bin")]:
        shutil.rmtree(p)
    run([sys.executable, "-m", "compileall", "-q", str(site)], timeout=300)  # nothing to write at run time
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    _copy(PYTHON, rootfs)
    shutil.copytree(
        stdlib,
        rootfs / stdlib.relative_to("/"),
        ignore=lambda d, names: [n for n in names if n in STDLIB_SKIP or n.startswith("config-")],
        symlinks=True,
    )
    shared = [PYTHON, *stdlib.joinpath("lib-dynload").glob("*.so"), *site.rglob("*.so")]
    for lib in _shared_libraries(shared):
        if not (rootfs / lib.relative_to("/")).exists():
            _copy(lib, rootfs)
    _copy(Path("/etc/os-release"), rootfs)  # every base image has one; the host source reads it
    _docker_build(tag, work / "base", "FROM scratch\nCOPY rootfs/ /\n")


def _build_image(tag: str, base: str, wheel: Path, work: Path) -> None:
    """The runtime stage: the installed wheel over the base, run as UID 65532."""
    site = work / "app" / "site"
    run([*PIP, "install", "--no-deps", "--target", str(site), str(wheel)], timeout=300)
    shutil.rmtree(site / "bin", ignore_errors=True)
    run([sys.executable, "-m", "compileall", "-q", str(site)], timeout=300)
    _docker_build(
        tag,
        work / "app",
        f"FROM {base}\n"
        "COPY site/ /opt/ztmon/site/\n"
        "ENV PYTHONPATH=/opt/ztmon/site PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2\n"
        f"USER {UID}\n"
        f'ENTRYPOINT ["{PYTHON}", "-m", "ztmon"]\n'
        'CMD ["run"]\n',
    )


def _present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def _drop_other_tags(repo: str, keep: str) -> None:
    """One cached image per repository: older sources' images go."""
    tags = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repo]).stdout.split()
    old = [t for t in tags if t != keep]
    if old:
        subprocess.run(["docker", "rmi", *old], capture_output=True, check=False)


@pytest.fixture(scope="module")
def image(dockerd: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    base = f"{REPO}-base:{_digest([ROOT / 'pyproject.toml'], str(PYTHON))}"
    sources = [ROOT / "pyproject.toml", ROOT / "README.md", *sorted((ROOT / "ztmon").rglob("*.py"))]
    tag = f"{REPO}:{_digest(sources, base)}"
    if not _present(tag):
        work = tmp_path_factory.mktemp("image")
        wheel = _wheel(work)
        if not _present(base):
            _build_base(base, wheel, work)
        _build_image(tag, base, wheel, work)
        _drop_other_tags(REPO, tag)
        _drop_other_tags(f"{REPO}-base", base)
    return tag


def docker_run(image: str, *args: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "run", "--rm", "--label", "ztmon.test=1", "--network", "none", *HARDENED, *extra, image, *args]
    return run(cmd, check=False, timeout=120)


def test_version_runs_read_only_as_non_root(image: str) -> None:
    proc = docker_run(image, "version")
    assert proc.returncode == 0, proc.stderr
    from ztmon import __version__  # noqa: PLC0415

    assert proc.stdout.strip() == f"ztmon {__version__}"


def test_scan_runs_read_only_as_non_root(image: str) -> None:
    proc = docker_run(image, "scan", "--source", "host", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(s["name"], s["up"]) for s in report["sources"]] == [("host", True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@contextlib.contextmanager
def daemon(image: str, *extra: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    name = f"ztops-ro-{os.getpid()}-{port}"
    env = ("-e", "ZTMON_SERVER__ADDRESS=127.0.0.1", "-e", f"ZTMON_SERVER__PORT={port}")
    run(["docker", "run", "-d", "--name", name, "--label", "ztmon.test=1", "--network", "host", *HARDENED, *env,
         *extra, image, "run"])  # fmt: skip
    try:
        yield name, port
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _wait_ready(name: str, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if _get(port, "/readyz")[0] == 200:
                return
        time.sleep(0.1)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    pytest.fail(f"the read-only daemon never became ready:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")


def test_daemon_serves_metrics_and_watches_docker_read_only_as_non_root(image: str) -> None:
    """`ztmon run` as documented for Docker hosts: read-only root, UID 65532, only the socket's group added."""
    sock = Path("/var/run/docker.sock")
    assert sock.is_socket(), "the shared dockerd listens on /var/run/docker.sock"
    extra = ("-v", f"{sock}:/var/run/docker.sock:ro", "--group-add", str(sock.stat().st_gid))
    with daemon(image, *extra) as (name, port):
        _wait_ready(name, port)
        status, body = _get(port, "/metrics")
        assert status == 200
        assert "ztmon_ready 1.0" in body
        assert 'ztmon_source_up{source="docker"} 1.0' in body
        assert 'ztmon_source_up{source="host"} 1.0' in body
        inspect = json.loads(run(["docker", "inspect", name]).stdout)[0]
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        assert inspect["Config"]["User"] == UID
        started = time.monotonic()
        run(["docker", "stop", "-t", "10", name])
        assert time.monotonic() - started < 6, "SIGTERM is honoured within 5 s"
        state = json.loads(run(["docker", "inspect", name]).stdout)[0]["State"]
        assert state["ExitCode"] == 0, run(["docker", "logs", name]).stderr[-2000:]

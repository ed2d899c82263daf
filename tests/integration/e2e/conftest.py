"""End-to-end fixtures: dockerd + `ztmon run` + Prometheus (scraping every second, alerts/ loaded with
`for: 0s`) + Alertmanager (alerts/alertmanager.example.yml, receivers pointed at a local webhook).

Everything is started once per session on free 127.0.0.1 ports with temporary data directories and
stopped at the end; containers are labelled `ztmon.test=1` and removed. The dockerd is shared with other
tests and engineers, so every assertion selects this session's containers by name.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# --import-mode=importlib puts no test directory on sys.path: the helpers are imported by name.
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent / "ops")]

from e2eharness import (  # noqa: E402
    TIMINGS,
    Prometheus,
    Service,
    Stack,
    TLSServer,
    Webhook,
    e2e_rules,
    start_alertmanager,
    start_prometheus,
    wait_until,
)
from opslib import AM_EXAMPLE, RULES  # noqa: E402
from ztharness import PREFIX, Containers, Daemons, Image  # noqa: E402

TARGET_LABELS = {"cluster": "e2e", "node": "e2e-node"}  # what a ServiceMonitor's relabelling would add
FOR_OVERRIDE = "0s"  # shipped: 0s-10m; here every alert fires at the first evaluation that sees it


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("ztmon end to end: docker run / rm -> Alertmanager webhook, footprint")
        for what, value in TIMINGS:
            terminalreporter.write_line(f"{what}: {value:.2f}")


def ztmon_has(section: str, field: str) -> bool:
    from ztmon import settings  # noqa: PLC0415

    model = getattr(settings, section, None)
    return model is not None and field in model.model_fields


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    hook = Webhook().start()
    yield hook
    hook.stop()


@pytest.fixture(scope="session")
def tls_server(e2e_dir: Path) -> Iterator[TLSServer]:
    server = TLSServer(e2e_dir, days=5).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scenario_containers(image: Image) -> Iterator[dict[str, Any]]:
    """Long-lived containers that give every posture panel something to show."""
    box = Containers(prefix=f"{PREFIX}e2e-", image=image.tag)
    try:
        yield {
            "readonly": box.run("readonly", "--read-only"),
            # Created, not started: this machine's capability bounding set lacks CAP_SYS_RESOURCE, so runc cannot
            # start a privileged container; ztmon (include_stopped) judges the same inspect.
            "privileged": box.run("privileged", "--privileged", start=False),
            "suppressed": box.run("suppressed", "--label", "ztmon.io/ignore=readonly-rootfs reason=e2e fixture"),
            "http": box.run("http", cmd=("httpd", "-f", "-p", "8080")),
        }
    finally:
        box.cleanup()


@pytest.fixture(scope="session")
def stack(
    e2e_dir: Path,
    dockerd: str,
    webhook: Webhook,
    tls_server: TLSServer,
    scenario_containers: dict[str, Any],
) -> Iterator[Stack]:
    procfs = ztmon_has("SourcesConfig", "procfs")
    env = {
        "ZTMON_ENGINE__RESYNC_INTERVAL_SECONDS": "60",  # the shipped default
        "ZTMON_ENGINE__RESYNC_JITTER_SECONDS": "5",
        "ZTMON_SOURCES__DOCKER__INCLUDE_STOPPED": "true",  # for the created privileged containers
    }
    if procfs:
        env["ZTMON_SOURCES__PROCFS__ENABLED"] = "true"
    services: list[Service] = []
    daemons = Daemons(e2e_dir / "ztmon")
    (e2e_dir / "ztmon").mkdir()
    try:
        am = start_alertmanager(e2e_dir, AM_EXAMPLE, webhook.port)
        services.append(am)
        ztmon = daemons.start(env)
        prom = start_prometheus(
            e2e_dir,
            rules=e2e_rules(RULES, FOR_OVERRIDE),
            ztmon_port=ztmon.port,
            am_port=am.port,
            target_labels=TARGET_LABELS,
        )
        services.append(prom)
        s = Stack(ztmon, Prometheus(prom), am, webhook, tls_server, procfs)
        wait_until(s.scraped, timeout=60, what='Prometheus scraping ztmon (up{job="ztmon"} == 1)')
        yield s
    finally:
        for service in reversed(services):
            service.stop()
        daemons.stop_all()

"""docker run -> ztmon -> Prometheus -> Alertmanager -> webhook, and back on docker rm: the page a user gets.

Timed from just before `docker run` (`docker create` for the privileged one, which cannot start on this
machine) or `docker rm` to the webhook's receipt; printed in the summary.
The shipped `for:` durations (0 s for privileged, 1 m for most findings) add to these in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from e2eharness import Notification, Stack, record, wait_until
from ztharness import PREFIX, Container, Containers, Image

# Seconds. Findings driven by Docker events arrive in 1-2 s (measured); listener findings (plaintext) wait for
# the procfs source's next refresh, which comes with the resync (60 s + up to 5 s jitter by default).
DEADLINE = 120


@dataclass(frozen=True)
class Page:
    alertname: str
    container: str
    receiver: str  # the example Alertmanager configuration's route for it
    fired: tuple[Notification, dict[str, Any]]
    fired_after: float
    resolved: tuple[Notification, dict[str, Any]]
    resolved_after: float


def _wait(
    stack: Stack, alertname: str, container: str, status: str, since: float
) -> tuple[Notification, dict[str, Any]]:
    return wait_until(
        lambda: stack.webhook.first(alertname=alertname, status=status, after=since, container=container),
        timeout=DEADLINE,
        what=f"{alertname} {status} for {container} at the webhook",
    )


@pytest.fixture(scope="module")
def pages(stack: Stack, image: Image) -> Iterator[dict[str, Page]]:
    """Start a writable-root container serving plaintext HTTP and a privileged one; wait for their pages;
    remove them; wait for the resolved notifications."""
    box = Containers(prefix=f"{PREFIX}page-", image=image.tag)
    expected: list[tuple[str, str, str]] = [
        ("ZtmonWritableRootFilesystem", "writable", "security-tickets"),
        ("ZtmonPrivilegedContainer", "privileged", "security-pager"),
    ]
    if stack.procfs:
        expected.append(("ZtmonPlaintextListener", "writable", "security-tickets"))
    try:
        started: dict[str, tuple[Container, float]] = {}
        t = time.monotonic()
        started["writable"] = (box.run("writable", cmd=("httpd", "-f", "-p", "8080")), t)
        t = time.monotonic()
        # `docker create`: a privileged container cannot start on this machine (see conftest.py).
        started["privileged"] = (box.run("privileged", "--privileged", start=False), t)
        fired = {a: _wait(stack, a, started[k][0].name, "firing", started[k][1]) for a, k, _ in expected}
        removed_at = time.monotonic()
        box.cleanup()
        resolved = {a: _wait(stack, a, started[k][0].name, "resolved", removed_at) for a, k, _ in expected}
        out = {}
        for alertname, key, receiver in expected:
            container, t0 = started[key]
            page = Page(
                alertname,
                container.name,
                receiver,
                fired[alertname],
                fired[alertname][0].at - t0,
                resolved[alertname],
                resolved[alertname][0].at - removed_at,
            )
            verb = "docker create" if key == "privileged" else "docker run"
            record(f"{alertname}: {verb} -> firing at the webhook (s)", page.fired_after)
            record(f"{alertname}: docker rm -> resolved at the webhook (s)", page.resolved_after)
            out[alertname] = page
        yield out
    finally:
        box.cleanup()


@pytest.mark.parametrize(
    "alertname", ["ZtmonWritableRootFilesystem", "ZtmonPrivilegedContainer", "ZtmonPlaintextListener"]
)
def test_docker_run_pages_and_docker_rm_resolves(stack: Stack, pages: dict[str, Page], alertname: str) -> None:
    if alertname not in pages:
        pytest.skip("the procfs source (listeners, TLS probe) is not in this tree: no plaintext check to page")
    page = pages[alertname]
    notification, alert = page.fired
    assert notification.receiver == page.receiver, "routed by severity as alerts/alertmanager.example.yml says"
    assert notification.payload["status"] in {"firing", "resolved"}
    assert alert["labels"]["job"] == "ztmon"
    assert alert["labels"]["node"] == "e2e-node"
    assert page.container in alert["annotations"]["description"], "the description names the container"
    assert alert["annotations"]["runbook_url"].endswith(f"#{alertname.lower()}")
    assert page.resolved[0].receiver == page.receiver
    assert page.fired_after < DEADLINE
    assert page.resolved_after < DEADLINE


def test_posture_notifications_are_grouped_by_namespace(pages: dict[str, Page]) -> None:
    for page in pages.values():
        group = page.fired[0].payload["groupLabels"]
        assert set(group) <= {"namespace"}, group  # Docker containers have none: one group per receiver


def test_a_certificate_about_to_expire_pages(stack: Stack) -> None:
    """The TLS server's certificate expires in 5 days (< 14): the probe exports its notAfter, the rule fires."""
    if not stack.procfs:
        pytest.skip("the procfs source (listeners, TLS probe) is not in this tree")
    notification, alert = _wait_port(stack, "ZtmonCertificateExpiringSoon", str(stack.tls.port))
    assert notification.receiver == "security-tickets"
    assert "ztmon-e2e.test" in alert["annotations"]["description"]
    assert "expires in 4d" in alert["annotations"]["description"]


def _wait_port(stack: Stack, alertname: str, port: str) -> tuple[Notification, dict[str, Any]]:
    return wait_until(
        lambda: stack.webhook.first(alertname=alertname, status="firing", port=port),
        timeout=DEADLINE,
        what=f"{alertname} for port {port} at the webhook",
    )

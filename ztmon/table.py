"""Rich tables for people (`ztmon scan`). Machines use --output json."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ztmon.model.findings import Finding, ListenerState, Report, Severity

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _table(title: str, findings: tuple[Finding, ...], *, reason: bool = False) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("severity")
    t.add_column("check")
    t.add_column("resource")
    t.add_column("message" if not reason else "suppressed by")
    for f in findings:
        r = f.resource
        where = "/".join(x for x in (r.namespace, r.name) if x)
        if r.container and r.container != r.name:
            where += f" [{r.container}]"
        t.add_row(
            f"[{_STYLE[f.severity]}]{f.severity.label}[/]", f.check, where, f.suppressed_by if reason else f.message
        )
    return t


def print_report(report: Report, *, show_suppressed: bool = False, console: Console | None = None) -> None:
    con = console or Console()
    con.print(_table(f"{len(report.findings)} open findings on {report.node}", report.findings))
    if show_suppressed and report.suppressed:
        con.print(_table(f"{len(report.suppressed)} suppressed", report.suppressed, reason=True))
    if report.listeners:
        con.print(_listener_table(report.listeners))
    down = [s for s in report.sources if not s.up]
    for s in down:
        con.print(f"[yellow]source {s.name} is down:[/] {s.error}")
    con.print(
        f"{len(report.containers)} containers scanned; sources: "
        + ", ".join(f"{s.name}={'up' if s.up else 'down'}" for s in report.sources)
    )


_TLS_STYLE = {"tls": "green", "plaintext": "red", "unknown": "dim"}


def _listener_table(listeners: tuple[ListenerState, ...]) -> Table:
    """`ztmon scan --source procfs`: every listener, its owner and what the TLS probe made of it."""
    t = Table(title=f"{len(listeners)} listeners", title_justify="left")
    for col in ("owner", "process", "address", "tls", "detail"):
        t.add_column(col)
    for li in sorted(listeners, key=lambda x: (x.namespace, x.pod, x.container, x.protocol, x.port, x.address)):
        owner = "/".join(x for x in (li.namespace, li.pod or li.container) if x) or "(node)"
        if li.pod and li.container:
            owner += f" [{li.container}]"
        addr = f"[{li.address}]" if ":" in li.address else li.address
        detail = li.app_protocol if li.tls != "tls" else " ".join(x for x in (li.tls_version, li.subject_cn) if x)
        if li.tls == "unknown" and li.reason:
            detail = li.reason
        style = _TLS_STYLE.get(li.tls, "")
        t.add_row(
            owner,
            f"{li.process} ({li.pid})" if li.pid else "",
            f"{addr}:{li.port}/{li.protocol}",
            f"[{style}]{li.tls}[/]" if style else li.tls,
            detail,
        )
    return t

"""sources.host: node facts from injectable host paths."""

from __future__ import annotations

import pytest

from ztmon.model.inventory import Node
from ztmon.sources import host


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n',
            {
                "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
                "NAME": "Debian GNU/Linux",
            },
        ),
        ("ID=ubuntu\n", {"ID": "ubuntu"}),
        ("NAME='Alpine Linux'\n", {"NAME": "Alpine Linux"}),
        ("# comment=x\n\nno equals sign\n=value\n", {}),
        ('BROKEN="unterminated\nOK=1\n', {"OK": "1"}),
        ("EMPTY=\n", {"EMPTY": ""}),
        ("  ID=fedora  \n", {"ID": "fedora"}),
    ],
)
def test_parse_os_release(text, expected):
    assert host.parse_os_release(text) == expected


def _tree(tmp_path, *, os_release=None, usr_os_release=None, kernel=None):
    root, proc = tmp_path / "root", tmp_path / "proc"
    root.mkdir()
    proc.mkdir()
    if os_release is not None:
        (root / "etc").mkdir()
        (root / "etc/os-release").write_text(os_release, encoding="utf-8")
    if usr_os_release is not None:
        (root / "usr/lib").mkdir(parents=True)
        (root / "usr/lib/os-release").write_text(usr_os_release, encoding="utf-8")
    if kernel is not None:
        (proc / "sys/kernel").mkdir(parents=True)
        (proc / "sys/kernel/osrelease").write_text(kernel, encoding="utf-8")
    return root, proc


def test_read_node_from_fixture_tree(tmp_path):
    root, proc = _tree(tmp_path, os_release='PRETTY_NAME="Debian GNU/Linux 12"\n', kernel="6.8.0-45-generic\n")
    assert host.read_node(name="n1", root=root, proc_root=proc) == Node(
        name="n1", kernel="6.8.0-45-generic", os_image="Debian GNU/Linux 12"
    )


def test_read_node_falls_back_to_usr_lib_and_name(tmp_path):
    root, proc = _tree(tmp_path, usr_os_release="NAME=Fedora\n")
    assert host.read_node(name="n1", root=root, proc_root=proc) == Node(name="n1", os_image="Fedora")


def test_read_node_missing_files_give_empty_fields(tmp_path):
    root, proc = _tree(tmp_path)
    assert host.read_node(name="n1", root=root, proc_root=proc) == Node(name="n1")


async def test_host_source_refresh_publishes_node_and_marks_up(tmp_path):
    root, proc = _tree(tmp_path, os_release="PRETTY_NAME=X\n", kernel="6.1\n")
    source = host.HostSource(node_name="n1", root=root, proc_root=proc)
    assert source.part().node == Node(name="n1")
    assert source.up is False
    await source.refresh()
    assert source.part().node == Node(name="n1", kernel="6.1", os_image="X")
    assert source.part().containers == ()
    assert source.up is True
    assert source.last_success is not None

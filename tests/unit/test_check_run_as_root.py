"""run-as-root: the container's user, else the image's, decides; runAsNonRoot exempts."""

from __future__ import annotations

import pytest

from ztmon.checks.common import is_root_user
from ztmon.model.findings import Severity


@pytest.mark.parametrize(
    ("user", "root"),
    [
        ("", True),  # image default, i.e. root
        (" ", True),
        ("root", True),
        ("0", True),
        ("0:0", True),
        ("root:root", True),
        ("0:1000", True),  # uid decides, not gid
        ("1000", False),
        ("1000:1000", False),
        ("1000:0", False),  # gid 0 alone is not uid 0
        ("nobody", False),
        ("app", False),
    ],
)
def test_is_root_user(user, root):
    assert is_root_user(user) is root


@pytest.mark.parametrize(
    ("user", "flagged"),
    [
        ("root", True),
        ("0", True),
        ("0:0", True),
        ("1000", False),
        ("1000:1000", False),
        ("nobody", False),
    ],
)
def test_run_as_root_by_container_user(check, container, user, flagged):
    findings = check("run-as-root", container(user=user))
    assert len(findings) == int(flagged)


def test_run_as_root_evidence_names_user_and_origin(check, container):
    (f,) = check("run-as-root", container(user="0:0"))
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence) == {"user": "0:0", "user_from": "container"}


def test_run_as_root_unset_user_everywhere_means_root(check, container):
    (f,) = check("run-as-root", container(user="", image_user=""))
    assert dict(f.evidence) == {"user": "(unset: root)", "user_from": "image"}


def test_run_as_root_falls_back_to_image_user_root(check, container):
    (f,) = check("run-as-root", container(user="", image_user="root"))
    assert dict(f.evidence) == {"user": "root", "user_from": "image"}


def test_run_as_root_falls_back_to_image_user_non_root(check, container):
    assert check("run-as-root", container(user="", image_user="app")) == []


def test_run_as_root_container_user_beats_image_user(check, container):
    assert check("run-as-root", container(user="1000", image_user="root")) == []
    assert len(check("run-as-root", container(user="root", image_user="app"))) == 1


@pytest.mark.parametrize("user", ["", "0", "root"])
def test_run_as_root_skips_run_as_non_root(check, container, user):
    assert check("run-as-root", container(user=user, run_as_non_root=True)) == []


def test_is_root_user_numeric_uid_with_leading_zero():
    assert is_root_user("00")

"""mutable-image: :latest or no tag (medium), another tag (low), a digest or image id (pinned)."""

from __future__ import annotations

import pytest

from ztmon.checks.mutable_image import split_reference
from ztmon.model.findings import Severity
from ztmon.model.policy import Policy

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("busybox", ("", "busybox", "", "")),
        ("busybox:1.36", ("", "busybox", "1.36", "")),
        ("library/busybox:latest", ("", "library/busybox", "latest", "")),
        ("localhost/x", ("localhost", "x", "", "")),
        ("localhost:5000/x:1", ("localhost:5000", "x", "1", "")),
        ("registry.example.com:443/team/app", ("registry.example.com:443", "team/app", "", "")),
        ("ghcr.io/org/app:v2", ("ghcr.io", "org/app", "v2", "")),
        (f"repo@{DIGEST}", ("", "repo", "", DIGEST)),
        (f"ghcr.io/org/app:v2@{DIGEST}", ("ghcr.io", "org/app", "v2", DIGEST)),
    ],
)
def test_split_reference(ref, parts):
    assert split_reference(ref) == parts


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("busybox", "(none)"),
        ("busybox:latest", "latest"),
        ("library/busybox:latest", "latest"),
        ("localhost:5000/x", "(none)"),
        ("registry.example.com:443/team/app", "(none)"),  # the port is not a tag
    ],
)
def test_mutable_image_latest_or_untagged_is_medium(check, container, image, tag):
    (f,) = check("mutable-image", container(image=image))
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence) == {"image": image, "tag": tag}


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("busybox:1.36", "1.36"),
        ("localhost:5000/x:1", "1"),
        ("ghcr.io/org/app:v2", "v2"),
    ],
)
def test_mutable_image_other_tag_is_low(check, container, image, tag):
    (f,) = check("mutable-image", container(image=image))
    assert f.severity is Severity.LOW
    assert dict(f.evidence) == {"image": image, "tag": tag}


@pytest.mark.parametrize(
    "image",
    [
        f"repo@{DIGEST}",
        f"busybox:1.36@{DIGEST}",
        f"busybox:latest@{DIGEST}",
        f"localhost:5000/x@{DIGEST}",
        DIGEST,  # started from an image id
    ],
)
def test_mutable_image_pinned_is_not_flagged(check, container, image):
    assert check("mutable-image", container(image=image)) == []


def test_mutable_image_trusted_registry_skips_tagged_image(check, container):
    policy = Policy(trusted_mutable_registries=("registry.example.com",))
    assert check("mutable-image", container(image="registry.example.com/app:1.2"), policy=policy) == []


def test_mutable_image_trusted_registry_still_flags_latest(check, container):
    policy = Policy(trusted_mutable_registries=("registry.example.com",))
    (f,) = check("mutable-image", container(image="registry.example.com/app:latest"), policy=policy)
    assert f.severity is Severity.MEDIUM


def test_mutable_image_other_registry_not_trusted(check, container):
    policy = Policy(trusted_mutable_registries=("registry.example.com",))
    (f,) = check("mutable-image", container(image="other.example.com/app:1.2"), policy=policy)
    assert f.severity is Severity.LOW


def test_mutable_image_one_finding_per_container(check, container):
    findings = check("mutable-image", container(image="a:latest"), container(image="b:1", name="b", id="b" * 64))
    assert [f.severity for f in findings] == [Severity.MEDIUM, Severity.LOW]
    assert len({f.id for f in findings}) == 2

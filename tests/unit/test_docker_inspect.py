"""sources.docker.parse_inspect: `docker inspect` JSON (API 1.41) -> Container, or InspectError naming the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ztmon.model.inventory import EnvVar, Mount, PublishedPort, ValueKind
from ztmon.sources.docker import InspectError, is_running, parse_inspect

FIXTURE = Path(__file__).parent / "fixtures" / "docker_inspect_web.json"
SECRETS = ("hunter2-very-secret", "AKIAIOSFODNN7EXAMPLE")


@pytest.fixture
def inspect() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_identity_fields(inspect):
    c = parse_inspect(inspect)
    assert c.runtime == "docker"
    assert c.id == "4f66ad9a0b2e3c1d5e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
    assert c.name == "web"  # leading "/" removed
    assert c.image == "nginx:1.27"  # the reference as given, from Config.Image
    assert c.image_digest == "sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6"
    assert (c.namespace, c.pod) == ("", "")


def test_runtime_argument_is_kept(inspect):
    assert parse_inspect(inspect, runtime="podman").runtime == "podman"


def test_labels_are_sorted_pairs(inspect):
    c = parse_inspect(inspect)
    assert c.labels == (
        ("com.example.team", "web"),
        ("maintainer", "NGINX Docker Maintainers <docker-maint@nginx.com>"),
    )
    assert c.label("com.example.team") == "web"
    assert c.label("absent") is None


def test_security_fields(inspect):
    c = parse_inspect(inspect)
    assert c.read_only_rootfs is True
    assert c.privileged is False
    assert c.user == "101:101"
    assert c.image_user == ""
    assert c.run_as_non_root is False
    assert c.no_new_privileges is True


def test_capabilities_are_normalised(inspect):
    c = parse_inspect(inspect)
    assert c.cap_add == ("NET_ADMIN", "SYS_TIME")
    assert c.cap_drop == ("MKNOD",)


def test_namespaces_not_shared(inspect):
    c = parse_inspect(inspect)
    assert (c.host_network, c.host_pid, c.host_ipc) == (False, False, False)


def test_host_namespaces(inspect):
    inspect["HostConfig"].update(NetworkMode="host", PidMode="host", IpcMode="host")
    c = parse_inspect(inspect)
    assert (c.host_network, c.host_pid, c.host_ipc) == (True, True, True)


def test_mounts(inspect):
    assert parse_inspect(inspect).mounts == (
        Mount(source="/etc/ssl", destination="/etc/ssl", type="bind", read_only=True),
        Mount(source="/var/run/docker.sock", destination="/var/run/docker.sock", type="bind", read_only=False),
        Mount(
            source="/var/lib/docker/volumes/web-cache/_data",
            destination="/var/cache/nginx",
            type="volume",
            read_only=False,
        ),
        Mount(source="", destination="/run", type="tmpfs", read_only=False),
    )


def test_mount_without_source_falls_back_to_volume_name_and_type_volume(inspect):
    inspect["Mounts"] = [{"Name": "data", "Destination": "/data"}]
    assert parse_inspect(inspect).mounts == (Mount(source="data", destination="/data", type="volume", read_only=False),)


def test_published_ports(inspect):
    assert parse_inspect(inspect).ports == (
        PublishedPort(container_port=80, protocol="tcp", host_ip="0.0.0.0", host_port=8080),
        PublishedPort(container_port=80, protocol="tcp", host_ip="::", host_port=8080),
        PublishedPort(container_port=53, protocol="udp", host_ip="127.0.0.1", host_port=5353),
    )


def test_port_without_protocol_is_tcp_and_missing_host_port_is_zero(inspect):
    inspect["NetworkSettings"]["Ports"] = {"9000": [{"HostIp": ""}]}
    assert parse_inspect(inspect).ports == (PublishedPort(9000, "tcp", "", 0),)


def test_exposed_ports_sorted(inspect):
    assert parse_inspect(inspect).exposed_ports == ("443/tcp", "53/udp", "80/tcp")


def test_env_is_classified_not_kept(inspect):
    env = parse_inspect(inspect).env
    assert [(v.name, v.kind) for v in env] == [
        ("DB_PASSWORD", ValueKind.LITERAL),
        ("PASSWORD_FILE", ValueKind.PATH),
        ("TOKEN_TTL", ValueKind.NUMBER),
        ("AWS_KEY", ValueKind.LITERAL),
        ("PATH", ValueKind.PATH),
        ("NGINX_VERSION", ValueKind.LITERAL),
    ]
    assert env[3] == EnvVar("AWS_KEY", ValueKind.LITERAL, ("AWS Access Key",))


def test_started_at_nanoseconds_truncated_to_microseconds(inspect):
    assert parse_inspect(inspect).started_at == datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T10:20:30.5Z", datetime(2024, 5, 1, 10, 20, 30, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # never started
        ("", None),
        ("yesterday", None),
    ],
)
def test_started_at_forms(inspect, text, expected):
    inspect["State"]["StartedAt"] = text
    assert parse_inspect(inspect).started_at == expected


@pytest.mark.parametrize("value", ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"])
def test_no_new_privileges_spellings(inspect, value):
    inspect["HostConfig"]["SecurityOpt"] = [value]
    assert parse_inspect(inspect).no_new_privileges is True


@pytest.mark.parametrize("opts", [None, [], ["no-new-privileges:false"], ["seccomp=unconfined"]])
def test_no_new_privileges_absent_or_false(inspect, opts):
    inspect["HostConfig"]["SecurityOpt"] = opts
    assert parse_inspect(inspect).no_new_privileges is False


def test_kubernetes_labels_fill_namespace_pod_and_container(inspect):
    inspect["Name"] = "/k8s_app_cart-7d9f_shop_0b1c2d3e_0"
    inspect["Config"]["Labels"] = {
        "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.pod.name": "cart-7d9f",
        "io.kubernetes.container.name": "app",
    }
    c = parse_inspect(inspect)
    assert (c.namespace, c.pod, c.name) == ("shop", "cart-7d9f", "app")


def test_minimal_inspect_gives_defaults():
    c = parse_inspect({"Id": "abc"})
    assert (c.id, c.name, c.image, c.user) == ("abc", "", "", "")
    assert (c.labels, c.mounts, c.ports, c.env, c.cap_add) == ((), (), (), (), ())
    assert c.read_only_rootfs is False
    assert c.started_at is None


def test_image_falls_back_to_image_id_without_config_image(inspect):
    del inspect["Config"]["Image"]
    assert parse_inspect(inspect).image == inspect["Image"]


def test_secret_values_never_reach_the_container(inspect):
    text = repr(parse_inspect(inspect))
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.__setitem__("Config", ["not", "an", "object"]), "Config"),
        (lambda d: d.__setitem__("HostConfig", "x"), "HostConfig"),
        (lambda d: d.__setitem__("NetworkSettings", 1), "NetworkSettings"),
        (lambda d: d.__setitem__("State", []), "State"),
        (lambda d: d["Config"].__setitem__("Env", "A=1"), "Config.Env"),
        (lambda d: d["Config"].__setitem__("Labels", ["a=b"]), "Config.Labels"),
        (lambda d: d["Config"].__setitem__("User", 0), "Config.User"),
        (lambda d: d["Config"].__setitem__("Image", 1), "Config.Image"),
        (lambda d: d["Config"].__setitem__("ExposedPorts", ["80/tcp"]), "Config.ExposedPorts"),
        (lambda d: d["HostConfig"].__setitem__("CapAdd", "SYS_ADMIN"), "HostConfig.CapAdd"),
        (lambda d: d["HostConfig"].__setitem__("CapDrop", "ALL"), "HostConfig.CapDrop"),
        (lambda d: d["HostConfig"].__setitem__("SecurityOpt", "no-new-privileges"), "HostConfig.SecurityOpt"),
        (lambda d: d["HostConfig"].__setitem__("NetworkMode", ["host"]), "HostConfig.NetworkMode"),
        (lambda d: d.__setitem__("Mounts", {"Type": "bind"}), "Mounts"),
        (lambda d: d["Mounts"].__setitem__(1, "/var/run/docker.sock"), "Mounts[1]"),
        (lambda d: d["NetworkSettings"].__setitem__("Ports", []), "NetworkSettings.Ports"),
        (lambda d: d["NetworkSettings"]["Ports"].__setitem__("http/tcp", None), "NetworkSettings.Ports"),
        (lambda d: d["State"].__setitem__("StartedAt", 0), "State.StartedAt"),
        (lambda d: d.__setitem__("Name", 1), "Name"),
        (lambda d: d.__delitem__("Id"), "Id"),
        (lambda d: d.__setitem__("Id", ""), "Id"),
        (lambda d: d.__setitem__("Id", 42), "Id"),
    ],
)
def test_malformed_inspect_raises_error_naming_the_field(inspect, mutate, field):
    data = copy.deepcopy(inspect)
    mutate(data)
    with pytest.raises(InspectError) as info:
        parse_inspect(data)
    assert field in str(info.value)


def test_bad_port_key_is_quoted(inspect):
    inspect["NetworkSettings"]["Ports"] = {"http/tcp": None}
    with pytest.raises(InspectError, match=r"^NetworkSettings\.Ports: bad port 'http/tcp'$"):
        parse_inspect(inspect)


@pytest.mark.parametrize("data", [[], "x", None, 1])
def test_non_object_inspect_is_rejected(data):
    with pytest.raises(InspectError, match=r"^inspect: expected an object"):
        parse_inspect(data)


def test_inspect_error_is_a_value_error():
    assert issubclass(InspectError, ValueError)


@pytest.mark.parametrize("bindings", [["8080"], {"HostPort": "8080"}])
def test_malformed_port_binding_raises_inspect_error(inspect, bindings):
    inspect["NetworkSettings"]["Ports"] = {"80/tcp": bindings}
    with pytest.raises(InspectError, match=r"NetworkSettings\.Ports"):
        parse_inspect(inspect)


@pytest.mark.parametrize(
    ("state", "running"),
    [({"Running": True}, True), ({"Running": False}, False), ({}, False), (None, False), ("running", False)],
)
def test_is_running(state, running):
    assert is_running({"Id": "x", "State": state}) is running

"""TLS and auth in what ``regctl up`` renders: the server's config (loaded back through the server's own loader),
the compose file, the container, and the refusals before anything starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from regctl.config.load import load_server_config
from regctl.config.server import ServerConfig
from regctl.deploy import render
from regctl.deploy.docker_runtime import container_spec
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.render import check_container_access
from regctl.errors import RegctlError

RULES = [
    {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
    {"subjects": ["*"], "repositories": ["*"], "actions": ["pull"]},
]


def instance(tmp_path: Path, **values: Any) -> tuple[InstanceLayout, InstanceConfig]:
    config = build_config({"host": "registry.test", **values})
    return create_instance(tmp_path / "instance", config).layout, config


def load(text: str, tmp_path: Path) -> ServerConfig:
    path = tmp_path / "config.yml"
    path.write_text(text)
    config, warnings = load_server_config(str(path), {})
    assert warnings == []
    return config


# -- the server's config.yml ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["container", "process"])
def test_tls_and_htpasswd(tmp_path: Path, target: render.Target) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "selfsigned", "auth.mode": "htpasswd"})
    text = render.render_server_config(config, layout, target)
    certs, auth = ("/certs", "/auth") if target == "container" else (layout.certs, layout.auth)
    data = yaml.safe_load(text)
    assert data["http"]["tls"] == {
        "certificate": f"{certs}/domain.crt",
        "key": f"{certs}/domain.key",
        "minimumtls": "tls1.2",
    }
    assert data["auth"] == {"htpasswd": {"realm": "Registry Realm", "path": f"{auth}/htpasswd"}}
    assert "tokenserver" not in data
    loaded = load(text, tmp_path)
    assert loaded.http.tls is not None and loaded.http.tls.certificate == f"{certs}/domain.crt"
    assert loaded.auth.htpasswd is not None and loaded.auth.htpasswd.path == f"{auth}/htpasswd"


def test_mutual_tls_and_tls13(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "files", "tls.minimumtls": "tls1.3", "tls.clientcas": ["a.pem"]})
    loaded = load(render.render_server_config(config, layout, "container"), tmp_path)
    assert loaded.http.tls is not None
    assert (loaded.http.tls.minimumtls, loaded.http.tls.clientcas) == ("tls1.3", ["/certs/a.pem"])


@pytest.mark.parametrize(("tls", "scheme"), [("selfsigned", "https"), ("none", "http")])
def test_token_mode_runs_the_token_service_in_the_server(tmp_path: Path, tls: str, scheme: str) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": tls, "auth.mode": "token", "host": "localhost"})
    text = render.render_server_config(config, layout, "container")
    data = yaml.safe_load(text)
    assert data["auth"] == {
        "token": {"realm": f"{scheme}://localhost:5000/auth/token", "service": "localhost:5000", "issuer": "regctl"}
    }
    assert data["tokenserver"] == {"key": "/auth/token.key", "htpasswd": "/auth/htpasswd", "groups": {}, "rules": RULES}
    loaded = load(text, tmp_path)
    assert loaded.tokenserver is not None
    assert (loaded.tokenserver.issuer, loaded.tokenserver.service, loaded.tokenserver.expiry) == (
        "regctl",
        "localhost:5000",
        300,
    )
    assert [rule.model_dump() for rule in loaded.tokenserver.rules] == RULES


def test_realm_groups_and_rules_from_regctl_yaml(tmp_path: Path) -> None:
    auth = {
        "mode": "token",
        "realm": "https://auth.example.com/token",
        "groups": {"devs": ["alice", "bob"]},
        "rules": [{"subjects": ["@devs"], "repositories": ["team/*"], "actions": ["pull", "push"]}],
    }
    config = InstanceConfig.model_validate({"tls": {"mode": "selfsigned"}, "auth": auth})
    layout = create_instance(tmp_path / "i", config).layout
    loaded = load(render.render_server_config(config, layout, "process"), tmp_path)
    assert loaded.auth.token is not None and loaded.auth.token.realm == "https://auth.example.com/token"
    assert loaded.tokenserver is not None
    assert loaded.tokenserver.groups == {"devs": ["alice", "bob"]}
    assert loaded.tokenserver.rules[0].subjects == ["@devs"]
    htpasswd = InstanceConfig.model_validate({"auth": {"mode": "htpasswd", "realm": "Ops"}})
    assert render.server_config(htpasswd, layout, target="process")["auth"]["htpasswd"]["realm"] == "Ops"


def test_without_tls_or_auth_nothing_is_added(tmp_path: Path) -> None:
    layout, config = instance(tmp_path)
    data = render.server_config(config, layout, target="container")
    assert "tls" not in data["http"] and "auth" not in data and "tokenserver" not in data


# -- refusals before anything starts ----------------------------------------------------------------------------------
def test_auth_without_tls_off_loopback_is_refused(tmp_path: Path) -> None:
    layout, _ = instance(tmp_path)
    config = build_config({"host": "registry.test", "auth.mode": "htpasswd"})
    with pytest.raises(RegctlError) as info:
        render.render_instance(config, layout, "img:1")
    assert (info.value.message, info.value.hint) == (
        "auth.mode htpasswd without TLS on registry.test, which is not a loopback host: passwords would cross the "
        "network in clear",
        "turn TLS on (--tls selfsigned|files|acme, tls.mode in regctl.yaml), or accept plain HTTP with --insecure "
        "(auth.insecure: true)",
    )
    assert not layout.rendered.exists()


@pytest.mark.parametrize(
    "values",
    [
        {"host": "localhost"},
        {"host": "127.0.0.2"},
        {"host": "::1"},
        {"host": "registry.test", "auth.insecure": True},
        {"host": "registry.test", "tls.mode": "selfsigned"},
    ],
)
def test_auth_allowed(tmp_path: Path, values: dict[str, Any]) -> None:
    layout, config = instance(tmp_path, **{**values, "auth.mode": "htpasswd"})
    render.render_instance(config, layout, "img:1")


_IMPORT = "install one with `regctl cert import --cert FILE --key FILE [--chain FILE]`"


@pytest.mark.parametrize(
    ("values", "missing", "why", "hint"),
    [
        ({"tls.mode": "files"}, "certs/domain.crt", "tls.mode is files", _IMPORT),
        ({"tls.mode": "files", "tls.clientcas": ["c.pem"]}, "certs/c.pem", "tls.clientcas names it",
         "put the client CAs there, in PEM"),
        ({"auth.mode": "htpasswd"}, "auth/htpasswd", "auth.mode is htpasswd",
         "`regctl adduser NAME` creates it with a first user"),
    ],
)  # fmt: skip
def test_missing_files_are_refused(tmp_path: Path, values: dict[str, Any], missing: str, why: str, hint: str) -> None:
    layout, _ = instance(tmp_path, host="localhost")
    config = build_config({"host": "localhost", **values})
    if missing == "certs/c.pem":
        layout.certs.mkdir()
        (layout.certs / "domain.crt").write_text("x")
        (layout.certs / "domain.key").write_text("x")
    with pytest.raises(RegctlError) as info:
        render.render_instance(config, layout, "img:1")
    assert (info.value.message, info.value.hint) == (f"{layout.root / missing} is missing, and {why}", hint)


def test_missing_token_key(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, host="localhost", **{"auth.mode": "token"})
    layout.token_key.unlink()
    with pytest.raises(RegctlError) as info:
        render.render_instance(config, layout, "img:1")
    assert (info.value.message, info.value.hint) == (
        f"{layout.token_key} is missing, and auth.mode is token",
        f"make an EC P-256 key: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {layout.token_key}",
    )


# -- the container and the compose file --------------------------------------------------------------------------------
def test_container_mounts_certs_and_auth_and_serves_in_the_instance_group(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "selfsigned", "auth.mode": "token"})
    spec = container_spec(config, layout, "sha256:aa", "cfg")
    assert spec["volumes"][str(layout.certs.absolute())] == {"bind": "/certs", "mode": "ro"}
    assert spec["volumes"][str(layout.auth.absolute())] == {"bind": "/auth", "mode": "ro"}
    assert spec["command"] == ["serve", "--run-as", f"registry:{layout.root.stat().st_gid}", render.CONTAINER_CONFIG]
    assert "command" not in container_spec(InstanceConfig(), layout, "sha256:aa", "cfg")


def test_compose_mounts_certs_and_auth(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "selfsigned", "auth.mode": "htpasswd"})
    service = yaml.safe_load(render.render_compose(config, layout, "img:1"))["services"]["registry"]
    assert service["command"] == ["serve", "--run-as", f"registry:{layout.group}", "/etc/docker/registry/config.yml"]
    assert service["volumes"][2:] == [
        {"type": "bind", "source": str(layout.certs.absolute()), "target": "/certs", "read_only": True},
        {"type": "bind", "source": str(layout.auth.absolute()), "target": "/auth", "read_only": True},
    ]


def test_files_regctl_writes_are_readable_by_the_container(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "selfsigned", "auth.mode": "token"})
    check_container_access(config, layout)
    assert (layout.certs.stat().st_mode & 0o7777, layout.auth.stat().st_mode & 0o7777) == (0o2750, 0o2750)
    assert layout.tls_key.stat().st_gid == layout.group


def test_a_key_copied_in_by_hand_is_caught(tmp_path: Path) -> None:
    layout, config = instance(tmp_path, **{"tls.mode": "selfsigned"})
    layout.tls_key.chmod(0o600)  # what `cp` of an openssl key gives
    st = layout.tls_key.stat()
    with pytest.raises(RegctlError) as info:
        check_container_access(config, layout)
    assert (info.value.message, info.value.hint) == (
        f"the server in the container cannot read {layout.tls_key}: it serves as uid 1000 in group {layout.group}, "
        f"and the file is {st.st_uid}:{st.st_gid} mode 0600",
        f"chgrp {layout.group} {layout.tls_key} && chmod g+r {layout.tls_key}",
    )


def test_a_file_of_uid_1000_is_read_as_its_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root gives files away")
    layout, config = instance(tmp_path, **{"auth.mode": "htpasswd", "host": "localhost"})
    os.chown(layout.htpasswd, 1000, 54321)
    layout.htpasswd.chmod(0o600)
    check_container_access(config, layout)

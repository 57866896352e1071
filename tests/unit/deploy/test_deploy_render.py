"""Rendering: every output is parsed back; every server config loads through the server's own loader cleanly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from regctl import __version__
from regctl.config.load import load_server_config
from regctl.config.server import ServerConfig
from regctl.deploy import render
from regctl.deploy.init import build_config, create_instance
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.errors import ConfigError, RegctlError

SECRET = "s3cr3t: #not a comment 'quoted' \"too\""
HEADERS = {"X-Content-Type-Options": ["nosniff"]}


@pytest.fixture
def layout(tmp_path: Path) -> InstanceLayout:
    layout = InstanceLayout(tmp_path / "instance")
    layout.secret.parent.mkdir(parents=True)
    layout.secret.write_text(SECRET + "\n")
    return layout


def load(path: Path) -> ServerConfig:
    config, warnings = load_server_config(str(path), {})
    assert warnings == []
    return config


# -- the server's config.yml ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        {},
        {"delete": True, "port": 5001},
        {"bind": "::1", "storage.path": "/srv/registry data: #1"},
        {"bind": "127.0.0.1", "storage.path": "data"},
    ],
)
@pytest.mark.parametrize("target", ["container", "process"])
def test_server_config_loads_cleanly(
    layout: InstanceLayout, tmp_path: Path, values: dict[str, Any], target: render.Target
) -> None:
    config = build_config(values)
    path = tmp_path / "config.yml"
    path.write_text(render.render_server_config(config, layout, target))
    loaded = load(path)
    assert yaml.safe_load(path.read_text()) == render.server_config(config, layout, target=target)
    if target == "container":
        addr, root = ":5000", "/var/lib/registry"
    else:
        host = config.bind if ":" not in config.bind else f"[{config.bind}]"
        addr = f"{host}:{config.port}"
        root = str(render.storage_path(config, layout) or layout.data.absolute())
    assert loaded.http.addr == addr
    assert loaded.http.secret == SECRET
    assert loaded.http.headers == HEADERS
    assert (loaded.storage.driver, loaded.storage.parameters) == ("filesystem", {"rootdirectory": root})
    assert loaded.storage.delete.enabled is config.delete
    assert loaded.log.fields == {"service": "registry"}


def test_process_storage_paths(layout: InstanceLayout) -> None:
    root = layout.root.absolute()
    data = {
        "data": root / "data",
        "/srv/registry": Path("/srv/registry"),
        "../shared": root / "../shared",
    }
    for path, expected in data.items():
        config = build_config({"storage.path": path})
        assert render.storage_path(config, layout) == expected
        assert render.server_config(config, layout, target="process")["storage"]["filesystem"] == {
            "rootdirectory": str(expected)
        }
    assert render.storage_path(InstanceConfig(), layout) is None


def test_image_config_is_registry2s_without_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(render.render_image_config())
    loaded = load(path)
    assert loaded.http.secret is None
    assert (loaded.http.addr, loaded.http.headers) == (":5000", HEADERS)
    assert loaded.storage.parameters == {"rootdirectory": "/var/lib/registry"}
    assert path.read_text().startswith("# The regctl image's default configuration: registry:2's.")


def test_missing_or_empty_secret(layout: InstanceLayout) -> None:
    layout.secret.write_text("\n")
    with pytest.raises(RegctlError) as info:
        render.server_config(InstanceConfig(), layout, target="container")
    assert (info.value.message, info.value.hint) == (
        f"the HTTP secret {layout.secret} is empty",
        "write a long random string into it",
    )
    layout.secret.unlink()
    with pytest.raises(RegctlError) as info:
        render.server_config(InstanceConfig(), layout, target="container")
    assert info.value.message == f"cannot read the HTTP secret {layout.secret}: No such file or directory"
    assert info.value.hint == (
        "restore it, or write a new one: (umask 077; python3 -c 'import secrets; "
        f"print(secrets.token_urlsafe(48))' > {layout.secret})"
    )


# -- docker-compose.yml -------------------------------------------------------------------------------------
def test_compose_with_a_named_volume(layout: InstanceLayout) -> None:
    text = render.render_compose(InstanceConfig(), layout, "regctl/registry:1.2")
    assert text.startswith(render.COMPOSE_MARKER)
    assert yaml.safe_load(text) == {
        "name": "registry",
        "services": {
            "registry": {
                "image": "regctl/registry:1.2",
                "restart": "always",
                "ports": ["0.0.0.0:5000:5000"],
                "volumes": [
                    {"type": "volume", "source": "regctl-data", "target": "/var/lib/registry"},
                    {
                        "type": "bind",
                        "source": str(layout.root.absolute() / "rendered" / "config.yml"),
                        "target": "/etc/docker/registry/config.yml",
                        "read_only": True,
                    },
                ],
            }
        },
        "volumes": {"regctl-data": {"name": "regctl-data"}},
    }


def test_compose_with_a_host_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    layout = InstanceLayout(Path("rel"))  # as `-C rel` gives it: the file must still hold absolute paths
    config = build_config(
        {"name": "yes", "port": 5001, "bind": "::1", "storage.path": "/srv/data: #1", "storage.volume": "unused"}
    )
    compose = yaml.safe_load(render.render_compose(config, layout, "ops/registry:7"))
    assert compose["name"] == "yes"  # a YAML 1.1 boolean word, quoted by to_yaml
    service = compose["services"]["yes"]
    assert service["ports"] == ["[::1]:5001:5000"]
    assert service["volumes"] == [
        {"type": "bind", "source": "/srv/data: #1", "target": "/var/lib/registry", "bind": {"create_host_path": True}},
        {
            "type": "bind",
            "source": str(tmp_path / "rel" / "rendered" / "config.yml"),
            "target": "/etc/docker/registry/config.yml",
            "read_only": True,
        },
    ]
    assert "volumes" not in compose


# -- Dockerfile ---------------------------------------------------------------------------------------------
def instructions(text: str) -> list[tuple[str, str]]:
    return [
        (line.split(" ", 1)[0], line.split(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]


def test_dockerfile_directives() -> None:
    text = render.render_dockerfile(
        base="peers/debian-python:12", python="/usr/bin/python3", version="1.2.3", pip_wheel="pip-25.0-py3-none-any.whl"
    )
    steps = instructions(text)
    assert [kind for kind, _ in steps] == [
        "FROM", "COPY", "RUN",
        "FROM", "COPY", "ENV", "COPY", "COPY", "RUN", "RUN", "EXPOSE", "VOLUME", "HEALTHCHECK", "ENTRYPOINT", "CMD",
    ]  # fmt: skip
    args = [arg for _, arg in steps]
    assert args[0] == "peers/debian-python:12 AS install"
    assert args[3] == "peers/debian-python:12"
    assert json.loads(args[1]) == ["wheels/", "/wheels/"]
    assert json.loads(args[2]) == [
        "/usr/bin/python3", "/wheels/pip-25.0-py3-none-any.whl/pip", "install", "--no-index", "--find-links",
        "/wheels", "--target", "/opt/regctl", "--no-cache-dir", "--disable-pip-version-check", "regctl==1.2.3",
    ]  # fmt: skip
    assert args[4] == '--from=install ["/opt/regctl", "/opt/regctl"]'
    assert args[5] == "PYTHONPATH=/opt/regctl PYTHONUNBUFFERED=1"
    assert json.loads(args[6]) == ["config.yml", "/etc/docker/registry/config.yml"]
    assert json.loads(args[7]) == ["htpasswd", "/usr/local/bin/htpasswd"]
    assert json.loads(args[8])[:3] == ["useradd", "--uid", "1000"]
    assert json.loads(args[8])[-1] == "registry"
    assert json.loads(args[9]) == ["install", "-d", "-o", "1000", "-g", "1000", "/var/lib/registry"]
    assert args[10] == "5000"
    assert json.loads(args[11]) == ["/var/lib/registry"]
    options, _, health = args[12].partition(" CMD ")
    assert options == "--interval=10s --timeout=5s --start-period=10s --retries=3"
    assert json.loads(health) == ["/usr/bin/python3", "-m", "regctl", "healthcheck", "/etc/docker/registry/config.yml"]
    assert json.loads(args[13]) == ["/usr/bin/python3", "-m", "regctl"]
    assert json.loads(args[14]) == ["serve", "--run-as", "registry", "/etc/docker/registry/config.yml"]


def test_htpasswd_script_runs_regctl_htpasswd_with_the_image_python() -> None:
    text = render.render_htpasswd_script("/usr/local/bin/python3")
    assert text.startswith("#!/usr/local/bin/python3\n")
    assert 'sys.argv[1:1] = ["htpasswd"]\nmain()\n' in text
    compile(text, "htpasswd", "exec")


def test_dockerfile_refuses_a_base_that_is_not_an_image_reference() -> None:
    with pytest.raises(ConfigError) as info:
        render.render_dockerfile(base="x\nRUN curl evil", python="python3", version="1", pip_wheel="pip.whl")
    assert info.value.message == (
        "image.base: must be an image reference such as python:3.12-slim, got 'x\\nRUN curl evil'"
    )


# -- the Jinja environment ----------------------------------------------------------------------------------
def test_strict_undefined_catches_a_missing_variable() -> None:
    context = {"from_instance": True, "version": "0.1", "log": {}, "storage": {}}  # no http
    with pytest.raises(jinja2.UndefinedError, match="'http' is undefined"):
        render._render("registry/config.yml.j2", context)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.1", "'0.1'"),
        ("yes", "'yes'"),
        (":5000", ":5000"),
        ("a: b", "'a: b'"),
        ("#x", "'#x'"),
        (5000, "5000"),
        (True, "true"),
        (None, "null"),
        ({}, "{}"),
        ({"a": [1, "b"]}, "a:\n- 1\n- b"),
    ],
)
def test_to_yaml(value: Any, text: str) -> None:
    assert render._to_yaml(value) == text
    assert yaml.safe_load(text) == value


def test_to_yaml_round_trips_a_multiline_string_inside_a_mapping() -> None:
    value = {"a": "two\nlines", "b": "x"}
    assert yaml.safe_load("top:\n  " + jinja2.filters.do_indent(render._to_yaml(value), 2)) == {"top": value}


@pytest.mark.parametrize("filter_name", ["to_yaml", "tojson"])
def test_filters_refuse_an_undefined_value(filter_name: str) -> None:
    template = render._environment().from_string(f"x: {{{{ missing | {filter_name} }}}}")
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        template.render({})


def test_to_yaml_flow_keeps_a_long_value_on_one_line() -> None:
    long = "/" + "x" * 300
    assert render._to_yaml([long], flow=True) == f"[{long}]"


def test_templates_never_come_from_the_working_directory(
    layout: InstanceLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "templates" / "registry").mkdir(parents=True)
    (tmp_path / "templates" / "registry" / "config.yml.j2").write_text("hijacked\n")
    monkeypatch.chdir(tmp_path)
    render._environment.cache_clear()
    try:
        assert "hijacked" not in render.render_server_config(InstanceConfig(), layout, "container")
    finally:
        render._environment.cache_clear()
    env = render._environment()
    assert env.loader is not None
    _, filename, _ = env.loader.get_source(env, "registry/config.yml.j2")
    repo = Path(__file__).parents[3]
    assert filename is not None
    assert Path(filename).parent.parent in (repo / "templates", Path(render.__file__).parents[1] / "templates")


# -- rendered/ ---------------------------------------------------------------------------------------------
def test_render_instance_writes_the_tree_with_final_modes(layout: InstanceLayout) -> None:
    config = InstanceConfig()
    render.render_instance(config, layout, "regctl/registry:9")
    modes = {p.name: p.stat().st_mode & 0o777 for p in layout.rendered.iterdir()}
    assert modes == {"config.yml": 0o600, "process-config.yml": 0o600, "docker-compose.yml": 0o644}
    assert layout.rendered.stat().st_mode & 0o777 == 0o700
    assert load(layout.server_config).http.addr == ":5000"
    assert load(layout.process_config).http.addr == "0.0.0.0:5000"
    assert layout.compose_file.read_text() == render.render_compose(config, layout, "regctl/registry:9")
    assert sorted(p.name for p in layout.root.iterdir()) == ["rendered", "secrets"]  # no staging left


def test_render_instance_replaces_the_whole_tree(layout: InstanceLayout) -> None:
    render.render_instance(InstanceConfig(), layout, "a:1")
    (layout.rendered / "stale").write_text("from an older regctl")
    render.render_instance(build_config({"port": 5001}), layout, "a:2")
    assert sorted(p.name for p in layout.rendered.iterdir()) == [
        "config.yml",
        "docker-compose.yml",
        "process-config.yml",
    ]
    assert load(layout.process_config).http.addr == "0.0.0.0:5001"
    assert sorted(p.name for p in layout.root.iterdir()) == ["rendered", "secrets"]


def test_a_failed_render_leaves_the_old_tree(layout: InstanceLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    render.render_instance(InstanceConfig(), layout, "a:1")
    before = {p.name: p.read_text() for p in layout.rendered.iterdir()}

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "write_new", broken)
    with pytest.raises(OSError, match="No space left"):
        render.render_instance(build_config({"port": 5001}), layout, "a:2")
    assert {p.name: p.read_text() for p in layout.rendered.iterdir()} == before
    assert sorted(p.name for p in layout.root.iterdir()) == ["rendered", "secrets"]


# -- config show -----------------------------------------------------------------------------------------
def test_effective_config(tmp_path: Path) -> None:
    create_instance(tmp_path, build_config({"storage.path": "data", "runtime": "process"}))
    layout = InstanceLayout(tmp_path)
    secret = layout.secret.read_text().strip()
    effective = render.effective_config(layout)
    assert effective["instance_dir"] == str(tmp_path)
    assert effective["target"] == "process"
    assert effective["instance"]["image"]["tag"] == __version__
    assert effective["instance"]["storage"]["path"] == str(tmp_path / "data")
    assert effective["server"]["http"]["secret"] == render.SECRET_MASK
    assert effective["server"]["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "data")}
    shown = render.effective_config(layout, target="container", reveal_secrets=True)
    assert (shown["target"], shown["server"]["http"]["secret"]) == ("container", secret)
    assert shown["server"]["http"]["addr"] == ":5000"


# -- regctl compose ----------------------------------------------------------------------------------------
def test_export_compose(layout: InstanceLayout, tmp_path: Path) -> None:
    config = InstanceConfig()
    output = tmp_path / "compose.yml"
    text = render.export_compose(config, layout, output)
    assert output.read_text() == text == layout.compose_file.read_text()
    assert layout.server_config.exists()  # what the compose file mounts
    output.write_text(text + "# a line the operator added\n")
    render.export_compose(build_config({"port": 5001}), layout, output)  # regctl's file: overwritten
    assert "0.0.0.0:5001:5000" in output.read_text()

    output.write_text("services: {mine: {image: nginx}}\n")
    with pytest.raises(RegctlError) as info:
        render.export_compose(config, layout, output)
    assert (info.value.message, info.value.hint) == (
        f"{output} exists and was not written by regctl",
        "pass --force to overwrite it, or write elsewhere with -o FILE",
    )
    assert output.read_text() == "services: {mine: {image: nginx}}\n"
    render.export_compose(config, layout, output, force=True)
    assert output.read_text() == text
    assert render.export_compose(config, layout, None) == text


def test_rendered_files_hold_no_secret_for_others(layout: InstanceLayout) -> None:
    old = os.umask(0)
    try:
        render.render_instance(InstanceConfig(), layout, "a:1")
    finally:
        os.umask(old)
    assert layout.server_config.stat().st_mode & 0o777 == 0o600
    assert layout.process_config.stat().st_mode & 0o777 == 0o600
    assert SECRET not in layout.compose_file.read_text()

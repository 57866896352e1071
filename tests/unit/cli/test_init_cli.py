"""``regctl init`` through the real Click group: defaults, flags, questions on a (fake) terminal, refusals."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from regctl.cli import cli
from regctl.deploy.instance import InstanceConfig, InstanceLayout, load_config
from regctl.tls import bundle

# The module, not the command of the same name that regctl.cli exports.
init_module = importlib.import_module("regctl.cli.init")


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init_module, "stdin_is_tty", lambda: True)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def written(root: Path, summary: str, next_step: str = "regctl up") -> str:
    return (
        f"Wrote {root}/regctl.yaml\n"
        f"Wrote {root}/secrets/http-secret (mode 0600)\n"
        f"{summary}\n"
        f"Next: {next_step}\n"
    )


DEFAULT_SUMMARY = "Instance registry: localhost:5000, data in Docker volume regctl-data, delete off, runtime auto."


# -- defaults ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--yes"], ["-y"], []])  # no TTY under CliRunner: never asks
def test_defaults(tmp_path: Path, args: list[str]) -> None:
    result = invoke("init", *args)
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == written(tmp_path, DEFAULT_SUMMARY)
    layout = InstanceLayout(tmp_path)
    assert load_config(layout) == InstanceConfig()
    assert layout.secret.stat().st_mode & 0o777 == 0o600
    assert len(layout.secret.read_text().strip()) == 64


def test_yes_on_a_terminal_asks_nothing(tmp_path: Path, tty: None) -> None:
    result = invoke("init", "--yes")
    assert (result.exit_code, result.stderr) == (0, written(tmp_path, DEFAULT_SUMMARY))


def test_regctl_yaml_is_the_model_dumped_under_a_header(tmp_path: Path) -> None:
    invoke("init", "--yes", "--port", "5001")
    text = (tmp_path / "regctl.yaml").read_text()
    assert text.startswith("# regctl instance configuration: the one source of truth for this registry")
    assert yaml.safe_load(text) == InstanceConfig(port=5001).model_dump(mode="json")


# -- flags --------------------------------------------------------------------------------------------------
def test_every_question_is_a_flag(tmp_path: Path) -> None:
    result = invoke(
        "init", "--name", "ops-reg", "--host", "registry.example.com", "--port", "5001", "--data-path", "data",
        "--delete", "--runtime", "process", "--base-image", "peers/debian-python:12",
    )  # fmt: skip
    assert result.exit_code == 0
    summary = f"Instance ops-reg: registry.example.com:5001, data in {tmp_path}/data, delete on, runtime process."
    assert result.stderr == written(tmp_path, summary)
    config = load_config(InstanceLayout(tmp_path))
    assert config == InstanceConfig.model_validate(
        {
            "name": "ops-reg",
            "host": "registry.example.com",
            "port": 5001,
            "storage": {"path": str(tmp_path / "data")},
            "delete": True,
            "runtime": "process",
            "image": {"base": "peers/debian-python:12"},
        }
    )


def test_volume_flag() -> None:
    assert invoke("init", "--volume", "reg-data", "--no-delete").exit_code == 0
    assert load_config(InstanceLayout(Path.cwd())).storage.volume == "reg-data"


def test_base_image_from_the_environment() -> None:
    assert invoke("init", env={"REGCTL_BASE_IMAGE": "peers/debian-python:12"}).exit_code == 0
    assert load_config(InstanceLayout(Path.cwd())).image.base == "peers/debian-python:12"


@pytest.mark.parametrize(
    ("args", "env", "error", "hint"),
    [
        (["--port", "70000"], None, "port: must be between 1 and 65535, got 70000", "fix --port"),
        (["--port", "http"], None, "port: must be between 1 and 65535, got 'http'", "fix --port"),
        (
            ["--name", "my registry"],
            None,
            "name: must start with a letter or digit and hold only letters, digits, '_', '.', '-', got 'my registry'",
            "fix --name",
        ),
        (
            ["--host", "https://registry.example.com"],
            None,
            "host: must be a host name or an IP address, without scheme or port, got 'https://registry.example.com'",
            "fix --host",
        ),
        (
            ["--volume", "x"],
            None,
            "storage.volume: must be a Docker volume name (2 or more letters, digits, '_', '.', '-'), got 'x'",
            "fix --volume",
        ),
        (
            ["--base-image", "python 3"],
            None,
            "image.base: must be an image reference such as python:3.12-slim, got 'python 3'",
            "fix --base-image",
        ),
        (
            [],
            {"REGCTL_BASE_IMAGE": "Python:3"},
            "image.base: must be an image reference such as python:3.12-slim, got 'Python:3'",
            "fix or unset REGCTL_BASE_IMAGE",
        ),
    ],
)
def test_wrong_values_name_the_key(
    tmp_path: Path, tty: None, args: list[str], env: dict[str, str] | None, error: str, hint: str
) -> None:
    result = invoke("init", *args, env=env)  # fails before asking anything, even on a terminal
    assert (result.exit_code, result.stderr) == (1, f"Error: {error}\nHint: {hint}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--volume", "v1", "--data-path", "/srv"], "Error: give --volume or --data-path, not both"),
        (
            ["--runtime", "podman"],
            "Error: Invalid value for '--runtime': 'podman' is not one of 'auto', 'docker', 'process'.",
        ),
        (["a", "b"], "Error: Got unexpected extra argument (b)"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("init", *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message
    assert list(tmp_path.iterdir()) == []


# -- an existing instance ----------------------------------------------------------------------------------
def test_refuses_to_overwrite_an_instance(tmp_path: Path, tty: None) -> None:
    invoke("init", "--yes")
    before = (tmp_path / "regctl.yaml").read_text()
    result = invoke("init", "--port", "5001")  # refused before any question
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path} already holds a regctl instance (regctl.yaml)\n"
        "Hint: pass --force to replace its regctl.yaml (the HTTP secret and the data are kept), or choose "
        "another directory\n",
    )
    assert (tmp_path / "regctl.yaml").read_text() == before


def test_force_replaces_the_config_and_keeps_the_secret(tmp_path: Path) -> None:
    invoke("init")
    secret = (tmp_path / "secrets" / "http-secret").read_text()
    result = invoke("init", "--force", "--port", "5001")
    assert (result.exit_code, result.stderr) == (
        0,
        f"Replaced {tmp_path}/regctl.yaml\n"
        f"Kept {tmp_path}/secrets/http-secret\n"
        f"{DEFAULT_SUMMARY.replace(':5000', ':5001')}\n"
        "Next: regctl up\n",
    )
    assert (tmp_path / "secrets" / "http-secret").read_text() == secret
    assert load_config(InstanceLayout(tmp_path)).port == 5001


# -- questions on a terminal -----------------------------------------------------------------------------------
def test_questions_show_defaults_and_enter_takes_them(tmp_path: Path, tty: None) -> None:
    result = invoke("init", input="\n" * 8)
    assert result.exit_code == 0
    assert result.stderr == (
        f"Creating a regctl instance in {tmp_path}; Enter takes the default shown.\n"
        "Instance name (also the container's) [registry]: \n"
        "Host name clients push to [localhost]: \n"
        "Port [5000]: \n"
        "Data: a Docker volume name, or a host directory (/srv/registry, ./data) [regctl-data]: \n"
        "Allow deleting images [y/N]: \n"
        "Runtime (auto, docker, process) [auto]: \n"
        "TLS (none, selfsigned, files, acme) [none]: \n"
        "Auth (none, htpasswd, token) [none]: \n" + written(tmp_path, DEFAULT_SUMMARY)
    )
    assert load_config(InstanceLayout(tmp_path)) == InstanceConfig()


def test_wrong_answers_are_asked_again(tmp_path: Path, tty: None) -> None:
    answers = [
        "my reg", "reg", "http://x", "reg.example.com", "70000", "5001", "x", "./data", "y", "podman", "docker",
        "letsencrypt", "selfsigned", "", "",
    ]  # fmt: skip
    result = invoke("init", input="\n".join(answers) + "\n")
    assert result.exit_code == 0
    assert result.stderr == (
        f"Creating a regctl instance in {tmp_path}; Enter takes the default shown.\n"
        "Instance name (also the container's) [registry]: my reg\n"
        "Error: name: must start with a letter or digit and hold only letters, digits, '_', '.', '-', got 'my reg'\n"
        "Instance name (also the container's) [registry]: reg\n"
        "Host name clients push to [localhost]: http://x\n"
        "Error: host: must be a host name or an IP address, without scheme or port, got 'http://x'\n"
        "Host name clients push to [localhost]: reg.example.com\n"
        "Port [5000]: 70000\n"
        "Error: port: must be between 1 and 65535, got 70000\n"
        "Port [5000]: 5001\n"
        "Data: a Docker volume name, or a host directory (/srv/registry, ./data) [regctl-data]: x\n"
        "Error: storage.volume: must be a Docker volume name (2 or more letters, digits, '_', '.', '-'), got 'x'\n"
        "Data: a Docker volume name, or a host directory (/srv/registry, ./data) [regctl-data]: ./data\n"
        "Allow deleting images [y/N]: y\n"
        "Runtime (auto, docker, process) [auto]: podman\n"
        "Error: 'podman' is not one of 'auto', 'docker', 'process'.\n"
        "Runtime (auto, docker, process) [auto]: docker\n"
        "TLS (none, selfsigned, files, acme) [none]: letsencrypt\n"
        "Error: 'letsencrypt' is not one of 'none', 'selfsigned', 'files', 'acme'.\n"
        "TLS (none, selfsigned, files, acme) [none]: selfsigned\n"
        "Auth (none, htpasswd, token) [none]: \n"
        f"Wrote {tmp_path}/regctl.yaml\n"
        f"Wrote {tmp_path}/secrets/http-secret (mode 0600)\n"
        f"Wrote {tmp_path}/secrets/ca.key (mode 0600)\n"
        f"Wrote {tmp_path}/certs/ca.crt (mode 0644)\n"
        f"Wrote {tmp_path}/certs/domain.key (mode 0640)\n"
        f"Wrote {tmp_path}/certs/domain.crt (mode 0644)\n"
        f"Instance reg: reg.example.com:5001, data in {tmp_path}/data, delete on, runtime docker, TLS selfsigned.\n"
        "Next: regctl cert trust\n"
        "Next: regctl up\n"
    )


def test_flags_answer_their_questions(tmp_path: Path, tty: None) -> None:
    result = invoke(
        "init", "--name", "reg", "--port", "5002", "--volume", "reg-data", "--delete", "--tls", "none", input="\n\n\n"
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines()[:4] == [
        f"Creating a regctl instance in {tmp_path}; Enter takes the default shown.",
        "Host name clients push to [localhost]: ",
        "Runtime (auto, docker, process) [auto]: ",
        "Auth (none, htpasswd, token) [none]: ",
    ]
    config = load_config(InstanceLayout(tmp_path))
    assert (config.name, config.port, config.storage.volume, config.delete) == ("reg", 5002, "reg-data", True)


def test_end_of_input_aborts_without_writing(tmp_path: Path, tty: None) -> None:
    result = invoke("init", input="reg\n")
    assert result.exit_code == 1
    assert result.stderr.endswith("Aborted!\n")
    assert list(tmp_path.iterdir()) == []


# -- where the instance goes ---------------------------------------------------------------------------------
def test_dir_argument(tmp_path: Path) -> None:
    result = invoke("init", "sub/reg")
    assert result.exit_code == 0
    assert result.stderr == written(tmp_path / "sub" / "reg", DEFAULT_SUMMARY, "regctl -C sub/reg up")
    assert (tmp_path / "sub" / "reg" / "regctl.yaml").is_file()


def test_dash_c(tmp_path: Path) -> None:
    result = invoke("-C", "my instance", "init")
    assert result.stderr == written(tmp_path / "my instance", DEFAULT_SUMMARY, "regctl -C 'my instance' up")


def test_regctl_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = invoke("init", env={"REGCTL_HOME": str(home)})
    # Later commands find it through $REGCTL_HOME, so plain `regctl up` is the next step.
    assert result.stderr == written(home, DEFAULT_SUMMARY)
    assert (home / "regctl.yaml").is_file()


def test_next_step_from_a_subdirectory_of_the_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("init")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    result = invoke("init", "..", "--force")
    assert result.stderr.splitlines()[-1] == "Next: regctl up"  # found from here: the nearest parent


def test_dir_and_dash_c_together() -> None:
    result = invoke("-C", "a", "init", "b")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: give the instance directory either as DIR or with -C, not both"


def test_help_teaches() -> None:
    result = invoke("init", "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: regctl init [OPTIONS] [DIR]\n")
    for expected in (
        "Examples:",
        "  regctl init --yes                             # every default: port 5000, data in volume regctl-data",
        "  regctl init /srv/registry --port 5001 --data-path /srv/registry/data --delete --yes",
        "--delete / --no-delete",
    ):
        assert expected in result.stdout
    assert "[env var: REGCTL_BASE_IMAGE" in " ".join(result.stdout.split())  # wrapped at 80 columns


# -- TLS and auth --------------------------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_domain_selfsigned_htpasswd(tmp_path: Path) -> None:
    result = invoke("init", "--domain", "registry.example.com", "--tls", "selfsigned", "--auth", "htpasswd")
    assert result.exit_code == 0
    assert result.stderr == (
        f"Wrote {tmp_path}/regctl.yaml\n"
        f"Wrote {tmp_path}/secrets/http-secret (mode 0600)\n"
        f"Wrote {tmp_path}/secrets/ca.key (mode 0600)\n"
        f"Wrote {tmp_path}/certs/ca.crt (mode 0644)\n"
        f"Wrote {tmp_path}/certs/domain.key (mode 0640)\n"
        f"Wrote {tmp_path}/certs/domain.crt (mode 0644)\n"
        f"Wrote {tmp_path}/auth/htpasswd (mode 0640)\n"
        "Instance registry: registry.example.com:5000, data in Docker volume regctl-data, delete off, runtime auto, "
        "TLS selfsigned, auth htpasswd.\n"
        "Next: regctl adduser NAME\n"
        "Next: regctl cert trust\n"
        "Next: regctl up\n"
    )
    layout = InstanceLayout(tmp_path)
    config = load_config(layout)
    assert (config.host, config.tls.mode, config.auth.mode, config.auth.insecure) == (
        "registry.example.com", "selfsigned", "htpasswd", False
    )
    assert (_mode(layout.ca_key), _mode(layout.tls_key), _mode(layout.htpasswd)) == (0o600, 0o640, 0o640)
    assert (_mode(layout.certs), _mode(layout.auth)) == (0o2750, 0o2750)
    assert layout.htpasswd.read_text() == ""
    leaf = bundle.load_certificates(layout.tls_certificate.read_bytes(), "crt")[0]
    assert bundle.names(leaf) == ["registry.example.com", "localhost", "127.0.0.1", "::1"]
    assert bundle.issued_by(leaf, bundle.load_certificates(layout.ca_certificate.read_bytes(), "ca")[0])


def test_files_token(tmp_path: Path) -> None:
    result = invoke("init", "--domain", "registry.example.com", "--tls", "files", "--auth", "token")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[2:] == [
        f"Wrote {tmp_path}/auth/htpasswd (mode 0640)",
        f"Wrote {tmp_path}/auth/token.key (mode 0640)",
        f"Wrote {tmp_path}/auth/token.crt (mode 0644)",
        "Instance registry: registry.example.com:5000, data in Docker volume regctl-data, delete off, runtime auto, "
        "TLS files, auth token.",
        "Next: regctl cert import --cert FILE --key FILE [--chain FILE]",
        "Next: regctl adduser NAME",
        "Next: regctl cert trust",
        "Next: regctl up",
    ]
    layout = InstanceLayout(tmp_path)
    key = serialization.load_pem_private_key(layout.token_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    token_cert = bundle.load_certificates(layout.token_certificate.read_bytes(), "token.crt")[0]
    assert bundle.key_matches(token_cert, key)
    assert sorted(p.name for p in layout.certs.iterdir()) == []  # `cert import` fills it
    assert load_config(layout).auth.rules[0].repositories == ["{user}/*"]


def test_auth_without_tls_off_loopback_is_refused(tmp_path: Path) -> None:
    result = invoke("init", "--domain", "registry.example.com", "--auth", "htpasswd")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: auth.mode htpasswd without TLS on registry.example.com, which is not a loopback host: passwords "
        "would cross the network in clear\n"
        "Hint: turn TLS on (--tls selfsigned|files|acme, tls.mode in regctl.yaml), or accept plain HTTP with "
        "--insecure (auth.insecure: true)\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_insecure_accepts_it(tmp_path: Path) -> None:
    result = invoke("init", "--domain", "registry.example.com", "--auth", "token", "--insecure")
    assert result.exit_code == 0
    assert load_config(InstanceLayout(tmp_path)).auth.insecure is True


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_auth_without_tls_on_loopback(tmp_path: Path, host: str) -> None:
    assert invoke("init", "--domain", host, "--auth", "htpasswd").exit_code == 0


def test_force_keeps_a_valid_certificate_and_the_users(tmp_path: Path) -> None:
    invoke("init", "--domain", "registry.example.com", "--tls", "selfsigned", "--auth", "htpasswd")
    layout = InstanceLayout(tmp_path)
    layout.htpasswd.write_text("alice:$2y$10$x\n")
    certificate = layout.tls_certificate.read_text()
    result = invoke("init", "--force", "--domain", "registry.example.com", "--tls", "selfsigned", "--auth", "token")
    assert result.stderr.splitlines()[2:8] == [
        f"Wrote {tmp_path}/auth/token.key (mode 0640)",
        f"Wrote {tmp_path}/auth/token.crt (mode 0644)",
        f"Kept {tmp_path}/certs/ca.crt",
        f"Kept {tmp_path}/certs/domain.crt",
        f"Kept {tmp_path}/certs/domain.key",
        f"Kept {tmp_path}/auth/htpasswd",
    ]
    assert layout.tls_certificate.read_text() == certificate
    assert layout.htpasswd.read_text() == "alice:$2y$10$x\n"
    # Another host: a new certificate from the same CA.
    ca = layout.ca_certificate.read_text()
    result = invoke("init", "--force", "--domain", "other.example.com", "--tls", "selfsigned")
    assert f"Kept {tmp_path}/certs/ca.crt" in result.stderr.splitlines()
    assert layout.ca_certificate.read_text() == ca and layout.tls_certificate.read_text() != certificate


def test_tls_and_auth_choices() -> None:
    result = invoke("init", "--tls", "letsencrypt")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--tls': 'letsencrypt' is not one of 'none', 'selfsigned', 'files', 'acme'."
    )

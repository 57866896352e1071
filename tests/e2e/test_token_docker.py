"""Token authentication with the Docker engine: ``regctl serve`` with ``auth.token`` and its own token service
(``tokenserver``: users from an htpasswd file, rules by user, group and repository pattern), over verified TLS
on ``[::1]`` (``regctl-e2e-<session>.test``; ../shared/PEERS.md 2b).

The rules (in the server's config.yml, and again in regctl.yaml through the CLI): every user owns
``{user}/*``; alice may also push to ``public/*``; the group ``readers`` (bob) may pull ``public/*``. So alice
pushes to ``alice/*`` and ``public/*``; bob is denied pushing to and pulling from ``alice/*``, denied pushing
to ``public/*``, and pulls ``public/*``. The engine does the whole token dance: ``docker login`` with the
OAuth2 password grant, then a token per repository scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import secure_fixtures
from helpers.docker import DockerEngine
from helpers.instance import PREFIX, pull_again, push_remove_pull, regctl_env
from helpers.secure import SecureInstance, TokenSetup, make_tls_files, output, write_htpasswd
from helpers.servers import RegistryFactory, RegistryProcess
from helpers.tools import describe

# Fixtures from helpers.secure_fixtures, found by name.
docker_logout = secure_fixtures.docker_logout
docker_trust = secure_fixtures.docker_trust
secure_host = secure_fixtures.secure_host
v6_port = secure_fixtures.v6_port


USERS = {"alice": "alice-Tk-1", "bob": "bob-Tk-2"}
RULES = [
    {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
    {"subjects": ["alice"], "repositories": ["public/*"], "actions": ["pull", "push"]},
    {"subjects": ["@readers"], "repositories": ["public/*"], "actions": ["pull"]},
]
GROUPS = {"readers": ["bob"]}


@dataclass
class TokenRegistry:
    server: RegistryProcess
    host: str

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.server.port}"

    def ref(self, repo: str, tag: str = "1") -> str:
        return f"{self.host_port}/{repo}:{tag}"


@pytest.fixture(params=["server-config", "regctl.yaml"])
def token_registry(request: pytest.FixtureRequest, tmp_path: Path, secure_host: str, v6_port: int,
                   registry_factory: RegistryFactory, docker_trust, docker_engine: DockerEngine,
                   e2e_session: str) -> TokenRegistry:
    """The same rules two ways: written in the server's config.yml (``auth.token`` + ``tokenserver``), or as
    an operator does it with the CLI (``regctl init --auth token``, ``auth.rules``/``auth.groups`` in
    regctl.yaml, ``regctl adduser``, ``regctl cert trust``)."""
    if request.param == "server-config":
        tls = make_tls_files(tmp_path / "tls", (secure_host, "::1"))
        setup = TokenSetup(tmp_path, secure_host, write_htpasswd(tmp_path / "htpasswd", USERS), RULES, GROUPS)
        server = registry_factory.start("regctl", host="::1", port=v6_port,
                                        extra=lambda proc: {"http": {"tls": tls.server_tls()}, **setup.extra(proc)})
        registry = TokenRegistry(server, secure_host)
        docker_trust.install(registry.host_port, tls.ca_pem)
        return registry
    instance = SecureInstance.init(tmp_path / "registry", name=f"{PREFIX}{e2e_session}-token", domain=secure_host,
                                   port=v6_port, tls="selfsigned", auth="token", env=regctl_env(docker_engine))
    instance.edit(auth={"rules": RULES, "groups": GROUPS})
    for user, password in USERS.items():
        instance.adduser(user, password)
    server = registry_factory.start("regctl", host="::1", port=v6_port, extra=instance.server_extra())
    docker_trust.track(instance.host_port)
    instance("cert", "trust")
    return TokenRegistry(server, secure_host)


def login(engine: DockerEngine, registry: TokenRegistry, user: str, password: str | None = None,
          check: bool = True):  # type: ignore[no-untyped-def]
    password = USERS[user] if password is None else password
    return engine("login", registry.host_port, "-u", user, "--password-stdin", input=f"{password}\n".encode(),
                  check=check)


def denied(result) -> str:  # type: ignore[no-untyped-def]
    text = output(result)
    assert result.returncode != 0, f"expected access to be denied:\n{describe(result)}"
    assert "denied" in text, f"expected 'denied' in docker's message:\n{describe(result)}"
    return text


def test_alice_pushes_her_namespace_bob_is_denied_and_pulls_public(token_registry, docker_engine, docker_logout,
                                                                   unique_image):
    registry = token_registry
    docker_logout(registry.host_port)

    # alice: her namespace and public/*.
    result = login(docker_engine, registry, "alice")
    assert "Login Succeeded" in output(result), describe(result)
    mine, mine_id = unique_image()
    alice_ref = registry.ref("alice/app")
    push_remove_pull(docker_engine, mine, mine_id, alice_ref)
    shared, shared_id = unique_image()
    public_ref = registry.ref("public/base")
    push_remove_pull(docker_engine, shared, shared_id, public_ref)
    docker_engine("logout", registry.host_port)

    # bob: logged in, but alice/* is not his.
    login(docker_engine, registry, "bob")
    docker_engine.remove_images(alice_ref, public_ref)
    denied(docker_engine("pull", alice_ref, check=False))
    intruder, _ = unique_image()
    over_alice = registry.ref("alice/app", "bob")
    docker_engine("tag", intruder, over_alice)
    denied(docker_engine("push", over_alice, check=False))
    # public/* he may pull, not push.
    pull_again(docker_engine, public_ref, shared_id)
    over_public = registry.ref("public/base", "bob")
    docker_engine("tag", intruder, over_public)
    denied(docker_engine("push", over_public, check=False))
    # His own namespace is his.
    own, own_id = unique_image()
    push_remove_pull(docker_engine, own, own_id, registry.ref("bob/tools"))
    docker_engine("logout", registry.host_port)

    # alice sees that bob's pushes changed nothing of hers: her tag is still her image, no "bob" tag anywhere.
    login(docker_engine, registry, "alice")
    pull_again(docker_engine, alice_ref, mine_id)
    for ref in (over_alice, over_public):
        docker_engine.remove_images(ref)
        result = docker_engine("pull", ref, check=False)
        assert result.returncode != 0 and "not found" in output(result), describe(result)


def test_token_login_refuses_a_wrong_password(token_registry, docker_engine, docker_logout):
    docker_logout(token_registry.host_port)
    result = login(docker_engine, token_registry, "alice", "wrong-password", check=False)
    assert result.returncode != 0, describe(result)
    assert "Login Succeeded" not in output(result)
    assert "unauthorized" in output(result).lower() or "401" in output(result), describe(result)


def test_anonymous_pull_is_refused(token_registry, docker_engine, docker_logout, unique_image):
    registry = token_registry
    docker_logout(registry.host_port)
    login(docker_engine, registry, "alice")
    src, image_id = unique_image()
    ref = registry.ref("public/anon")
    push_remove_pull(docker_engine, src, image_id, ref)
    docker_engine("logout", registry.host_port)
    docker_engine.remove_images(ref)
    result = docker_engine("pull", ref, check=False)
    assert result.returncode != 0, describe(result)
    assert docker_engine.image_id(ref) is None

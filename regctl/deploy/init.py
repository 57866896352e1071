"""Create an instance directory (``regctl init``): ``regctl.yaml``, the server's HTTP secret, and what its TLS
and auth modes need (the instance's CA and a certificate, an empty htpasswd, the token signing key)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regctl.deploy.acme import EAB_HMAC_MODE, write_eab_hmac
from regctl.deploy.certs import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    issue_selfsigned,
    prepare_certs_dir,
    selfsigned_is_current,
)
from regctl.deploy.files import atomic_write, shared_dir, write_new
from regctl.deploy.htpasswd import FILE_MODE as HTPASSWD_MODE
from regctl.deploy.instance import (
    CONFIG_FILE,
    InstanceConfig,
    InstanceLayout,
    check_transport,
    validate_config,
    write_config,
)
from regctl.errors import RegctlError
from regctl.tls.selfsigned import make_signing_pair

# 48 bytes: 64 URL-safe characters, far beyond guessing; Distribution's own generated secret is 32 bytes.
SECRET_BYTES = 48


def build_config(values: Mapping[str, Any]) -> InstanceConfig:
    """The configuration with ``values`` (dotted keys: ``port``, ``storage.volume``) over the defaults.
    Raises ConfigError naming the first wrong key and what it allows."""
    tree: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_config(tree)


def check_value(key: str, value: Any) -> Any:
    """``value`` for the dotted ``key`` as the configuration stores it (``"5000"`` → 5000); ConfigError when
    the key does not allow it."""
    node: Any = build_config({key: value})
    for part in key.split("."):
        node = getattr(node, part)
    return node


def data_location(answer: str, cwd: Path) -> dict[str, str]:
    """Where the data lives, from one answer: a Docker volume name, or a host directory when it looks like a
    path (holds ``/`` or starts with ``.`` or ``~``, as Compose tells them apart). A relative path is taken
    from ``cwd`` and stored absolute."""
    if "/" in answer or answer.startswith((".", "~")):
        return {"storage.path": os.path.abspath(cwd / Path(answer).expanduser())}
    return {"storage.volume": answer}


def check_absent(layout: InstanceLayout, *, force: bool) -> None:
    """Raise RegctlError if ``layout`` already holds an instance and ``force`` is not set."""
    if layout.config.exists() and not force:
        raise RegctlError(
            f"{layout.root.absolute()} already holds a regctl instance ({CONFIG_FILE})",
            hint="pass --force to replace its regctl.yaml (the HTTP secret and the data are kept), "
            "or choose another directory",
        )


@dataclass(frozen=True)
class Created:
    """What ``create_instance`` did: ``replaced`` an existing regctl.yaml, ``secret_kept`` an existing secret;
    ``generated``: the TLS and auth files it wrote, with their modes, in order; ``kept``: those it found."""

    layout: InstanceLayout
    replaced: bool
    secret_kept: bool
    generated: list[tuple[Path, int]] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def create_instance(
    root: Path, config: InstanceConfig, *, force: bool = False, eab_hmac_key: str | None = None
) -> Created:
    """Write ``regctl.yaml`` and ``secrets/http-secret`` (mode 0600 from its creation) into ``root``, and the
    files ``config``'s TLS and auth modes need (see :class:`Created`); ``eab_hmac_key`` (tls.acme.eab_kid's)
    goes to secrets/acme-eab-hmac, mode 0600.

    An existing secret is kept, even with ``force``: registries behind one load balancer must share it, so it
    may have been copied elsewhere; so are an existing CA, htpasswd and token key. Raises RegctlError if an
    instance exists and ``force`` is not set, auth would go without TLS to a host that is not loopback
    (``check_transport``), or a file cannot be written.
    """
    layout = InstanceLayout(root)
    check_absent(layout, force=force)
    check_transport(config)
    replaced = layout.config.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        layout.secret.parent.mkdir(mode=0o700, exist_ok=True)
        secret_kept = layout.secret.exists()
        if not secret_kept:
            write_new(layout.secret, secrets.token_urlsafe(SECRET_BYTES) + "\n", 0o600)
        created = Created(layout, replaced=replaced, secret_kept=secret_kept)
        if eab_hmac_key is not None:
            write_eab_hmac(layout, eab_hmac_key)
            created.generated.append((layout.acme_eab_hmac, EAB_HMAC_MODE))
        _generate_tls(config, created)
        _generate_auth(config, created)
        # Last: regctl.yaml is what marks the directory as an instance.
        write_config(layout, config)
    except OSError as exc:
        where = exc.filename or root
        raise RegctlError(f"cannot write {where}: {exc.strerror}", hint="choose a directory you can write to") from None
    return created


def _generate_tls(config: InstanceConfig, created: Created) -> None:
    """selfsigned: the instance's CA and a leaf for the host, unless a valid one is there already (``--force``
    keeps what clients trust). files and acme: only the certs/ directory, for ``regctl cert import`` or
    ``regctl cert issue``; acme also the account directory (0700), which a container may mount."""
    layout = created.layout
    if config.tls.mode in ("files", "acme"):
        prepare_certs_dir(layout)
    if config.tls.mode == "acme":
        layout.acme_accounts.mkdir(mode=0o700, exist_ok=True)
    if config.tls.mode != "selfsigned":
        return
    if selfsigned_is_current(config, layout):
        created.kept.extend([layout.ca_certificate, layout.tls_certificate, layout.tls_key])
        return
    issued = issue_selfsigned(config, layout)
    if issued.ca_created:
        created.generated.extend([(layout.ca_key, CA_KEY_MODE), (layout.ca_certificate, CERT_MODE)])
    else:
        created.kept.append(layout.ca_certificate)
    created.generated.extend([(layout.tls_key, KEY_MODE), (layout.tls_certificate, CERT_MODE)])


def _generate_auth(config: InstanceConfig, created: Created) -> None:
    """An empty htpasswd (users come with ``regctl adduser``) and, for token mode, the token service's
    signing key (EC P-256, ES256) with its certificate, for other registries that should trust its tokens."""
    layout = created.layout
    if config.auth.mode == "none":
        return
    shared_dir(layout.auth, layout.group)
    if layout.htpasswd.exists():
        created.kept.append(layout.htpasswd)
    else:
        write_new(layout.htpasswd, "", HTPASSWD_MODE, exact=True)
        created.generated.append((layout.htpasswd, HTPASSWD_MODE))
    if config.auth.mode != "token":
        return
    if layout.token_key.exists():
        created.kept.append(layout.token_key)
        return
    pair = make_signing_pair(f"regctl {config.name} token signer")
    write_new(layout.token_key, pair.key_pem, KEY_MODE, exact=True)
    atomic_write(layout.token_certificate, pair.certificate_pem, CERT_MODE, exact=True)
    created.generated.extend([(layout.token_key, KEY_MODE), (layout.token_certificate, CERT_MODE)])

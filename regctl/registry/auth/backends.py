"""The access controller and token issuer a configuration asks for (Distribution's ``GetAccessController``).

Built in each worker, after ``--run-as`` dropped privileges, so a file the serving user cannot read is
reported here, naming the configuration key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from regctl.config.server import ServerConfig
from regctl.errors import ConfigError, RegctlError
from regctl.registry.auth import AccessController
from regctl.registry.auth.basic import BasicAuth
from regctl.registry.auth.htpasswd import Htpasswd, HtpasswdError
from regctl.registry.auth.issuer import UNREADABLE_HINT, TokenIssuer
from regctl.registry.auth.token import TokenAuth, TokenSettings, key_id, load_bundle


def issuer(config: ServerConfig) -> TokenIssuer | None:
    """The built-in token service, when ``tokenserver`` is configured."""
    return TokenIssuer.from_config(config.tokenserver) if config.tokenserver is not None else None


def controller(config: ServerConfig, token_issuer: TokenIssuer | None) -> AccessController | None:
    """None when every request is allowed (no ``auth``, or ``auth: none``). Raises ConfigError."""
    auth = config.auth
    if auth.htpasswd is not None:
        try:
            return BasicAuth(auth.htpasswd.realm, Htpasswd(auth.htpasswd.path))
        except HtpasswdError as exc:
            raise ConfigError("auth.htpasswd.path", exc.message, hint=exc.hint) from None
    if auth.token is not None:
        keys: dict[str, PublicKeyTypes] = {}
        if auth.token.rootcertbundle:
            path = auth.token.rootcertbundle
            try:
                with open(path, "rb") as f:
                    keys = load_bundle(f.read(), path)
            except OSError as exc:
                raise ConfigError("auth.token.rootcertbundle", f"cannot read {path}: {exc.strerror}",
                                  hint=UNREADABLE_HINT) from None
            except RegctlError as exc:
                raise ConfigError("auth.token.rootcertbundle", exc.message) from None
        if token_issuer is not None:
            # The built-in service's own key is trusted without listing it (issuer and service must match).
            keys = {**keys, key_id(token_issuer.public_key): token_issuer.public_key}
        return TokenAuth(TokenSettings(auth.token.realm, auth.token.service, auth.token.issuer, keys))
    return None


"""Read Distribution's ``config.yml`` (version 0.1), apply ``REGISTRY_*`` overrides, validate: ServerConfig.

Compatible with ``registry:2`` (Distribution's ``configuration/parser.go``):

- ``REGISTRY_`` + the upper-cased key path joined by ``_`` overrides one key: ``REGISTRY_HTTP_ADDR``,
  ``REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY``. The value is parsed as YAML (``true``, ``[nosniff]``).
- Variables apply in sorted name order, so ``REGISTRY_STORAGE=s3`` (which replaces the whole section)
  applies before ``REGISTRY_STORAGE_S3_BUCKET``.
- Inside free-form maps (driver parameters, ``log.fields``, ``http.headers``) the rest of the name becomes a
  lower-cased key; list items are addressed by index (``REGISTRY_HTTP_HEADERS_X-FOO_0``).
- A variable naming no known key is ignored with a warning: Kubernetes injects ``REGISTRY_PORT`` and
  friends for a Service named ``registry``, and Distribution tolerates them too.

Unlike Distribution (whose YAML decoding ignores unknown keys), a key in the file that is not part of the
format is an error, with a suggestion. Keys that Distribution knows but regctl does not serve either fail
(ignoring them would weaken security or lose data: ``redis``, ``auth.token.signingalgorithms``) or give a
warning. Files named by the configuration (certificates, htpasswd) are read when the server starts, not here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from regctl.config.server import DEFAULT_ADDR, DEFAULT_ROOT, ServerConfig, parse_addr
from regctl.errors import ConfigError
from regctl.tls import DNS_NAME_RE

ENV_PREFIX = "REGISTRY_"
# Distribution's `registry serve` reads the file named here when no path argument is given.
CONFIG_PATH_ENV = "REGISTRY_CONFIGURATION_PATH"
VERSION = "0.1"

LOG_LEVELS = ("error", "warn", "info", "debug")
LOG_FORMATTERS = ("text", "json", "logstash")
STORAGE_DRIVERS = ("filesystem", "inmemory")
UNSUPPORTED_STORAGE_DRIVERS = ("s3", "azure", "gcs", "swift", "oss")
# Distribution also takes tls1.0 and tls1.1; regctl refuses them (RFC 8996 deprecates both).
TLS_VERSIONS = ("tls1.2", "tls1.3")
TOKEN_ACTIONS = ("pull", "push", "delete", "*")
# Docker clients treat a token lifetime under 60 s as 60 s (token spec, "expires_in").
MIN_TOKEN_EXPIRY = 60
ACME_CHALLENGES = ("http-01", "tls-alpn-01")
ACME_RESPONDERS = ("webroot", "standalone")
ACME_CHECK_INTERVAL = "12h"
# Checking more often only adds load on the CA: renewal is due days ahead.
MIN_ACME_CHECK_INTERVAL = 60


# -- YAML that keeps the source text of plain scalars ------------------------------------------------------
@dataclass(frozen=True)
class _Plain:
    """A plain YAML scalar that resolved to a bool or number, with its source text.

    Go's YAML decoder fills a string field with the text as written, so ``secret: 0123`` is "0123" and
    ``version: 0.10`` is "0.10"; string fields read ``text``, free-form maps read ``value``.
    """

    text: str
    value: bool | int | float


class _Loader(yaml.SafeLoader):
    # Go decodes timestamps in free-form maps as strings; PyYAML would make datetime objects.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _keeping_text(construct: Any) -> Any:
    def constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Plain:
        return _Plain(node.value, construct(loader, node))

    return constructor


for _tag, _construct in (
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keeping_text(_construct))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


# -- the shape of Distribution's configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class _Map:
    """A map with free-form keys (Go ``map[string]T``): values follow ``value``."""

    value: _Schema


@dataclass(frozen=True)
class _List:
    item: _Schema


@dataclass(frozen=True)
class _Choice:
    """A string from a fixed set, compared lower-cased like Distribution's log level."""

    choices: tuple[str, ...]


@dataclass(frozen=True)
class _Unserved:
    """A key Distribution knows and regctl does not serve yet: an error if ``fatal``, else a warning."""

    fatal: bool
    hint: str | None = None
    message: str = "not supported yet by regctl"
    # A backend in a one-backend map (auth): naming it turns it on, even with no parameters (`auth: silly`).
    by_key: bool = False


class _Any:
    """Any YAML value (Go ``interface{}``), passed on as plain Python data."""


class _DriverMap:
    """Distribution's one-driver map (``storage``): exactly one driver key plus shared keys."""


_ANY = _Any()
_DRIVER_MAP = _DriverMap()
_IGNORED = _Unserved(fatal=False)
_Schema = type | dict[str, "_Schema"] | _Map | _List | _Choice | _Unserved | _Any | _DriverMap

_STORAGE_SHARED: dict[str, _Schema] = {
    "delete": {"enabled": bool},
    # regctl always keeps blob and manifest descriptors in memory, which is what `inmemory` asks for.
    "cache": {"blobdescriptor": _Choice(("inmemory",)), "blobdescriptorsize": _IGNORED},
    "maintenance": {
        "uploadpurging": _IGNORED,
        # Operators turn read-only mode on while garbage collecting; accepting pushes then loses data.
        "readonly": _Unserved(fatal=True, hint="stop the server while garbage collecting instead"),
    },
    "redirect": _IGNORED,
    "tag": _IGNORED,
}
_FILESYSTEM_HINT = "use storage.filesystem (a volume or a mounted network filesystem works)"
_STORAGE_EXAMPLE = f"add one, e.g. storage: {{filesystem: {{rootdirectory: {DEFAULT_ROOT}}}}}"
_FORMAT = f"Distribution's configuration format {VERSION}"


def _default_storage() -> dict[str, Any]:
    return {"filesystem": {"rootdirectory": DEFAULT_ROOT}}


_SCHEMA: dict[str, _Schema] = {
    "version": str,
    "loglevel": _Choice(LOG_LEVELS),  # deprecated spelling of log.level
    "log": {
        "accesslog": {"disabled": bool},
        "level": _Choice(LOG_LEVELS),
        "formatter": _Choice(LOG_FORMATTERS),
        "fields": _Map(_ANY),
        "hooks": _IGNORED,
        "reportcaller": _IGNORED,
    },
    "storage": _DRIVER_MAP,
    # One backend (Distribution's ``auth.Type()``); `auth: htpasswd` and REGISTRY_AUTH=htpasswd name it alone.
    "auth": {
        "htpasswd": {"realm": str, "path": str},
        "token": {
            "realm": str,
            "service": str,
            "issuer": str,
            "rootcertbundle": str,
            "autoredirect": _IGNORED,
            "jwks": _IGNORED,
            # Accepting algorithms the operator meant to exclude would weaken security.
            "signingalgorithms": _Unserved(
                fatal=True, hint="remove it; regctl accepts ES256/384/512 and RS256/384/512"
            ),
        },
        "none": _Map(_ANY),  # takes no parameters; Distribution ignores any given
        "silly": _Unserved(fatal=True, hint="use auth.htpasswd or auth.token", by_key=True),
    },
    "middleware": _IGNORED,
    "reporting": _IGNORED,
    "http": {
        "addr": str,
        "net": str,
        "host": str,
        # Serving under another path prefix than configured would break every client.
        "prefix": _Unserved(fatal=True, hint="route the prefix in a reverse proxy, or remove http.prefix"),
        "secret": str,
        "relativeurls": bool,
        "draintimeout": _IGNORED,
        "tls": {
            "certificate": str,
            "key": str,
            "clientcas": _List(str),
            "minimumtls": _Choice(TLS_VERSIONS),
            # Python's server defaults already exclude weak suites (no RC4, 3DES, CBC-SHA1, export).
            "ciphersuites": _IGNORED,
            # Distribution 2.8's autocert only answers TLS-SNI-01, which Let's Encrypt turned off in 2019.
            "letsencrypt": _Unserved(
                fatal=True,
                message="not supported: Distribution's Let's Encrypt client uses a challenge Let's Encrypt turned off",
                hint="set http.tls.certificate and http.tls.key, and add an acme section with auto: true "
                "(see acme in the README)",
            ),
        },
        "headers": _Map(_List(str)),
        "debug": _IGNORED,
        "http2": _IGNORED,
    },
    "notifications": _IGNORED,
    "redis": _Unserved(fatal=True, hint="remove redis; regctl caches in memory"),
    "health": _IGNORED,
    "catalog": _IGNORED,
    "proxy": _IGNORED,
    "compatibility": _IGNORED,
    "validation": _IGNORED,
    "policy": _IGNORED,
    # regctl's extension: the built-in token service (see ServerConfig.tokenserver and the README).
    "tokenserver": {
        "issuer": str,
        "service": str,
        "key": str,
        "htpasswd": str,
        "expiry": str,
        "rules": _List({"subjects": _List(str), "repositories": _List(str), "actions": _List(_Choice(TOKEN_ACTIONS))}),
        "groups": _Map(_List(str)),
    },
    # regctl's extension: certificates from an ACME CA (see ServerConfig.acme and the README).
    "acme": {
        "directory": str,
        "email": str,
        "domains": _List(str),
        "accountdir": str,
        "challengedir": str,
        "httpaddr": str,
        "redirectport": str,
        "challenge": _Choice(ACME_CHALLENGES),
        "responder": _Choice(ACME_RESPONDERS),
        "httpport": str,
        "tlsport": str,
        "eabkid": str,
        "eabhmackey": str,
        "cabundle": str,
        "renewdays": str,
        "auto": bool,
        "checkinterval": str,
    },
}


# -- small helpers ---------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.text if isinstance(value, _Plain) else str(value)


def _plain(value: Any) -> Any:
    """YAML data with every _Plain replaced by its value: what Go puts in an ``interface{}``."""
    if isinstance(value, _Plain):
        return value.value
    if isinstance(value, dict):
        return {_text(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return repr(_text(value))


def _is_set(value: Any) -> bool:
    """Whether a section holds anything but zero values: ``redis: {}`` or ``tls: {key: ""}`` mean "off"."""
    if isinstance(value, dict):
        return any(_is_set(item) for item in value.values())
    if isinstance(value, list):
        return any(_is_set(item) for item in value)
    if isinstance(value, _Plain):
        return bool(value.value)
    return value is not None and value != ""


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _suggestion(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key.lower(), choices, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _driver_map(value: Any) -> Any:
    # `storage: inmemory` (or REGISTRY_STORAGE=inmemory) is short for `storage: {inmemory: {}}`.
    return {value: {}} if isinstance(value, str) and value else value


# -- environment overrides ------------------------------------------------------------------------------
def _apply_env(tree: dict[Any, Any], environ: Mapping[str, str], warnings: list[str]) -> dict[tuple[str, ...], str]:
    """Apply every ``REGISTRY_*`` variable to ``tree`` in sorted order; returns {key path: variable name}."""
    sources: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        path = _apply_one(tree, name, environ[name], warnings)
        if path is not None:
            sources[path] = name
    return sources


def _env_error(path: str, message: str, name: str) -> ConfigError:
    return ConfigError(path, message, env=name, hint=f"fix or unset {name}")


def _apply_one(tree: dict[Any, Any], name: str, raw: str, warnings: list[str]) -> tuple[str, ...] | None:
    parts = name[len(ENV_PREFIX) :].split("_")
    node: Any = tree
    schema: _Schema = _SCHEMA
    path: tuple[str, ...] = ()
    for depth, part in enumerate(parts):
        key: Any
        if isinstance(schema, dict):
            # Named keys match upper-cased, as Go matches upper-cased struct field names.
            key = next((k for k in schema if k.upper() == part), None)
            if key is None:
                here = _dotted((*path, part.lower()))
                warnings.append(f"{name}: unknown key {here}, ignored{_suggestion(part, list(schema))}")
                return None
            child_schema = schema[key]
        elif isinstance(node, list):
            where = _dotted((*path, part))
            if not part.isdigit():
                raise _env_error(where, f"{part!r} is not a list index", name)
            key = int(part)
            if key > len(node):
                raise _env_error(where, f"list index {key} is past the end (length {len(node)})", name)
            if key == len(node):
                node.append(None)
            child_schema = schema.item if isinstance(schema, _List) else _ANY
        else:
            # Free-form keys: reuse an existing key spelled in any case, else create it lower-cased.
            key = next((k for k in node if _text(k).upper() == part), part.lower())
            child_schema = schema.value if isinstance(schema, _Map) else _ANY
        path = (*path, _text(key))
        if depth == len(parts) - 1:
            try:
                node[key] = yaml.load(raw, Loader=_Loader)
            except yaml.YAMLError as exc:
                raise _env_error(_dotted(path), _yaml_problem(exc), name) from None
            return path
        if not isinstance(child_schema, (dict, _Map, _List, _Any, _Unserved, _DriverMap)):
            warnings.append(f"{name}: unknown key {_dotted((*path, parts[depth + 1].lower()))}, ignored")
            return None
        child = node[key] if isinstance(node, list) else node.get(key)
        if isinstance(child, str) and schema is _SCHEMA and key in ("storage", "auth"):
            child = _driver_map(child)
        # Replace whatever the file had there (null, a scalar, the wrong container) by what the path needs.
        if isinstance(child_schema, _List):
            child = child if isinstance(child, list) else []
        elif not isinstance(child, dict):
            free = isinstance(child_schema, (_Any, _Unserved))
            child = child if free and isinstance(child, list) else {}
        node[key] = child
        node, schema = child, child_schema
    return None


# -- validation -------------------------------------------------------------------------------------------
class _Checker:
    """Walks the merged YAML tree along _SCHEMA; errors name the key path and the variable that set it."""

    def __init__(self, sources: dict[tuple[str, ...], str], warnings: list[str], file: str | None) -> None:
        self._sources = sources
        self._warnings = warnings
        self._file = file

    def _env(self, path: tuple[str, ...]) -> str | None:
        for end in range(len(path), 0, -1):
            if path[:end] in self._sources:
                return self._sources[path[:end]]
        # A section whose only offending content came from a deeper variable (REGISTRY_STORAGE_S3_BUCKET).
        return next((env for key, env in self._sources.items() if key[: len(path)] == path), None)

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> ConfigError:
        env = self._env(path)
        if hint is None:
            hint = f"fix or unset {env}" if env else f"fix it in {self._file}" if self._file else None
        return ConfigError(_dotted(path), message, env=env, hint=hint)

    def _unserved(self, path: tuple[str, ...], value: Any, rule: _Unserved) -> None:
        if not (rule.by_key or _is_set(value)):
            return
        if rule.fatal:
            raise self.error(path, rule.message, rule.hint or f"remove {_dotted(path)}")
        env = self._env(path)
        where = f"{_dotted(path)} (from {env})" if env else _dotted(path)
        self._warnings.append(f"{where}: not supported yet, ignored")

    def check(self, value: Any, schema: _Schema, path: tuple[str, ...]) -> Any:
        if isinstance(schema, dict):
            return self._struct(value, schema, path)
        if isinstance(schema, _DriverMap):
            return self._storage(value, path)
        if isinstance(schema, _Map):
            items = self._mapping(value, path)
            return {_text(k): self.check(v, schema.value, (*path, _text(k))) for k, v in items}
        if isinstance(schema, _List):
            if value is None:
                return []
            if not isinstance(value, list):
                raise self.error(path, f"value must be a list, got {_describe(value)}")
            return [self.check(item, schema.item, (*path, str(i))) for i, item in enumerate(value)]
        if isinstance(schema, _Choice):
            choice = self._string(value, path).lower()
            if choice and choice not in schema.choices:
                raise self.error(path, f"must be one of {', '.join(schema.choices)}, got {choice!r}")
            return choice or None
        if schema is bool:
            if value is None:
                return False
            if isinstance(value, _Plain) and isinstance(value.value, bool):
                return value.value
            raise self.error(path, f"value must be a boolean, got {_describe(value)}", "write true or false")
        if schema is str:
            return self._string(value, path)
        return _plain(value)

    def _mapping(self, value: Any, path: tuple[str, ...]) -> list[tuple[Any, Any]]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_describe(value)}")
        return list(value.items())

    def _string(self, value: Any, path: tuple[str, ...]) -> str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise self.error(path, f"value must be a string, got {_describe(value)}")
        return _text(value)

    def _struct(self, value: Any, schema: dict[str, _Schema], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for raw_key, item in self._mapping(value, path):
            key = _text(raw_key)
            rule = schema.get(key)
            if rule is None:
                where = f"under {_dotted(path)}" if path else "at the top level"
                raise self.error(
                    (*path, key),
                    f"unknown key{_suggestion(key, list(schema))}",
                    f"valid keys {where}: {', '.join(schema)}",
                )
            if isinstance(rule, _Unserved):
                self._unserved((*path, key), item, rule)
            else:
                out[key] = self.check(item, rule, (*path, key))
        return out

    def _storage(self, value: Any, path: tuple[str, ...]) -> dict[str, Any]:
        value = _driver_map(value)
        items = self._mapping(value, path)
        shared = {_text(k): v for k, v in items if _text(k) in _STORAGE_SHARED}
        drivers = [_text(k) for k, _ in items if _text(k) not in _STORAGE_SHARED]
        known = [*STORAGE_DRIVERS, *UNSUPPORTED_STORAGE_DRIVERS]
        for driver in drivers:
            if driver not in known:
                raise self.error(
                    (*path, driver),
                    f"unknown key{_suggestion(driver, [*known, *_STORAGE_SHARED])}",
                    f"storage drivers: {', '.join(STORAGE_DRIVERS)}; shared storage keys: {', '.join(_STORAGE_SHARED)}",
                )
        if not drivers:
            raise self.error(path, "no storage driver configured", _STORAGE_EXAMPLE)
        if len(drivers) > 1:
            raise self.error(path, f"more than one storage driver configured: {', '.join(drivers)}", "keep exactly one")
        driver = drivers[0]
        params = value[next(k for k, _ in items if _text(k) == driver)]
        if driver in UNSUPPORTED_STORAGE_DRIVERS:
            raise self.error((*path, driver), "not supported yet by regctl", _FILESYSTEM_HINT)
        checked = self._struct(shared, _STORAGE_SHARED, path)
        return {
            "driver": driver,
            "parameters": self.check(params, _Map(_ANY), (*path, driver)),
            "delete": checked.get("delete", {}),
        }


def _read_file(path: str) -> dict[Any, Any]:
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_Loader)
    except OSError as exc:
        raise ConfigError(path, f"cannot read the configuration file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "the configuration file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, _yaml_problem(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping of configuration keys, got {_describe(data)}")
    return data


def load_server_config(path: str | None, environ: Mapping[str, str]) -> tuple[ServerConfig, list[str]]:
    """Load the server configuration from ``path`` (or ``$REGISTRY_CONFIGURATION_PATH``) and ``environ``.

    With no file at all, Distribution's image defaults apply: ``:5000`` and a filesystem at
    ``/var/lib/registry``. Returns the config and the warnings to show the operator (ignored keys and
    variables). Raises ConfigError naming the key path (and the variable, for a value from ``environ``).
    """
    path = path or environ.get(CONFIG_PATH_ENV) or None
    tree: dict[Any, Any]
    if path is None:
        tree = {"version": VERSION, "http": {"addr": DEFAULT_ADDR}, "storage": _default_storage()}
    else:
        tree = _read_file(path)
    warnings: list[str] = []
    sources = _apply_env(tree, environ, warnings)
    checker = _Checker(sources, warnings, path)
    if "auth" in tree:
        tree["auth"] = _driver_map(tree["auth"])

    if "version" not in tree:
        raise checker.error(("version",), f"missing (regctl reads {_FORMAT})", f"add `version: {VERSION}`")
    data = checker.check(tree, _SCHEMA, ())
    if data["version"] != VERSION:
        raise checker.error(("version",), f"unsupported version {data['version']!r} (regctl reads {_FORMAT})")
    if "storage" not in data:
        raise checker.error(("storage",), "no storage driver configured", _STORAGE_EXAMPLE)

    log = data.get("log", {})
    http = data.get("http", {})
    auth = _auth(checker, data.get("auth", {}))
    tokenserver = _tokenserver(checker, data.get("tokenserver"), auth)
    if "token" in auth and not auth["token"]["rootcertbundle"] and tokenserver is None:
        _require(checker, auth["token"], ("auth", "token"), ("rootcertbundle",))
    if http.get("net", "tcp") not in ("", "tcp"):
        raise checker.error(("http", "net"), f"{http['net']!r} is not supported yet by regctl (only tcp)")
    addr = http.get("addr", DEFAULT_ADDR)
    try:
        parse_addr(addr)
    except ValueError as exc:
        raise checker.error(("http", "addr"), str(exc)) from None
    tls = _tls(checker, http.get("tls", {}))

    config = ServerConfig.model_validate(
        {
            "version": VERSION,
            "log": {
                "level": log.get("level") or data.get("loglevel") or "info",
                "formatter": log.get("formatter") or "text",
                "fields": log.get("fields", {}),
                "accesslog": log.get("accesslog", {}),
            },
            "http": {
                "addr": addr,
                # Go's zero value "" means unset.
                "host": http.get("host") or None,
                "secret": http.get("secret") or None,
                "relativeurls": http.get("relativeurls", False),
                "headers": http.get("headers", {}),
                "tls": tls,
            },
            "storage": data["storage"],
            "auth": auth,
            "tokenserver": tokenserver,
            "acme": _acme(checker, data.get("acme"), addr, tls),
        }
    )
    return config, warnings


# -- sections checked as a whole ----------------------------------------------------------------------------
def _require(checker: _Checker, section: dict[str, Any], path: tuple[str, ...], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not section.get(key):
            where = (*path, key)
            variable = ENV_PREFIX + "_".join(where).upper()
            raise checker.error(where, "required", f"add {_dotted(where)}, or set {variable}")


def _auth(checker: _Checker, auth: dict[str, Any]) -> dict[str, Any]:
    if len(auth) > 1:
        raise checker.error(("auth",), f"more than one auth backend configured: {', '.join(auth)}", "keep exactly one")
    if "htpasswd" in auth:
        _require(checker, auth["htpasswd"], ("auth", "htpasswd"), ("realm", "path"))
    if "token" in auth:
        # rootcertbundle may be left out when tokenserver signs the tokens (checked by the caller).
        _require(checker, auth["token"], ("auth", "token"), ("realm", "service", "issuer"))
        auth["token"]["rootcertbundle"] = auth["token"].get("rootcertbundle") or None
    auth.pop("none", None)
    return auth


def _tls(checker: _Checker, tls: dict[str, Any]) -> dict[str, Any] | None:
    # Distribution serves HTTPS when a certificate is set; an empty section (or empty strings) means plain HTTP.
    if not _is_set(tls):
        return None
    _require(checker, tls, ("http", "tls"), ("certificate", "key"))
    for index, ca in enumerate(tls.get("clientcas", [])):
        if not ca:
            raise checker.error(("http", "tls", "clientcas", str(index)), "empty path", "name a PEM file of CAs")
    return {
        "certificate": tls["certificate"],
        "key": tls["key"],
        "clientcas": tls.get("clientcas", []),
        "minimumtls": tls.get("minimumtls") or TLS_VERSIONS[0],
    }


_DURATION_RE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_PLACEHOLDER_RE = re.compile(r"\{[^}]*\}")


def _seconds(checker: _Checker, text: str, path: tuple[str, ...], minimum: int) -> int:
    """Seconds from a number or a Go duration written in h/m/s (``5m``, ``1h30m``, ``90s``), at least ``minimum``."""
    m = _DURATION_RE.fullmatch(text)
    if text.isdigit():
        seconds = int(text)
    elif text and m:
        hours, minutes, secs = (int(g or 0) for g in m.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise checker.error(path, f"invalid duration {text!r}", "write seconds or a duration such as 5m, 1h, 90s")
    if seconds < minimum:
        raise checker.error(path, f"must be at least {minimum}s, got {text!r}")
    return seconds


def _tokenserver(checker: _Checker, server: dict[str, Any] | None, auth: dict[str, Any]) -> dict[str, Any] | None:
    if not server:
        return None
    path = ("tokenserver",)
    token = auth.get("token", {})
    # Issuer and service must match auth.token's for the tokens to verify; by default they are taken from there.
    for key in ("issuer", "service"):
        server[key] = server.get(key) or token.get(key)
        if not server[key]:
            raise checker.error((*path, key), "required", f"add {_dotted((*path, key))} (or auth.token.{key})")
    _require(checker, server, path, ("key", "htpasswd"))
    groups = server.get("groups", {})
    for name, members in groups.items():
        if not members or not all(members):
            raise checker.error((*path, "groups", name), "must list user names")
    for index, rule in enumerate(server.get("rules", [])):
        where = (*path, "rules", str(index))
        for key in ("subjects", "repositories", "actions"):
            values = rule.get(key, [])
            if not values or not all(values):
                raise checker.error((*where, key), "must be a non-empty list", "see tokenserver in the README")
        for subject in rule["subjects"]:
            if subject.startswith("@") and subject[1:] not in groups:
                raise checker.error(
                    (*where, "subjects"), f"unknown group {subject[1:]!r}", "define it under tokenserver.groups"
                )
        for pattern in rule["repositories"]:
            unknown = [p for p in _PLACEHOLDER_RE.findall(pattern) if p != "{user}"]
            if unknown:
                raise checker.error((*where, "repositories"), f"unknown placeholder {unknown[0]} in {pattern!r}",
                                    "the only placeholder is {user}")
    return {
        "issuer": server["issuer"],
        "service": server["service"],
        "key": server["key"],
        "htpasswd": server["htpasswd"],
        "expiry": _seconds(checker, server.get("expiry") or "5m", (*path, "expiry"), MIN_TOKEN_EXPIRY),
        "rules": server.get("rules", []),
        "groups": groups,
    }


def _number(checker: _Checker, text: str, path: tuple[str, ...], low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise checker.error(path, f"must be a number from {low} to {high}, got {text!r}")
    return int(text)


def _acme(
    checker: _Checker, acme: dict[str, Any] | None, addr: str, tls: dict[str, Any] | None
) -> dict[str, Any] | None:
    if not acme or not any(acme.values()):  # `acme: {auto: false}`: off
        return None
    path = ("acme",)
    _require(checker, acme, path, ("directory", "domains", "accountdir"))
    from regctl.tls.acme_client import directory_url

    try:
        directory = directory_url(acme["directory"])
    except ValueError as exc:
        raise checker.error((*path, "directory"), str(exc)) from None
    domains: list[str] = []
    for index, domain in enumerate(acme["domains"]):
        name = domain.lower().rstrip(".")
        if name.startswith("*."):
            raise checker.error((*path, "domains", str(index)), f"wildcard {domain!r} is not supported",
                                "HTTP-01 and TLS-ALPN-01 cannot prove a wildcard: list each name")
        if not DNS_NAME_RE.fullmatch(name):
            raise checker.error((*path, "domains", str(index)), f"{domain!r} is not a DNS name")
        if name not in domains:
            domains.append(name)

    httpaddr = acme.get("httpaddr") or None
    if httpaddr is not None:
        try:
            _, port = parse_addr(httpaddr)
        except ValueError as exc:
            raise checker.error((*path, "httpaddr"), str(exc)) from None
        if port and port == parse_addr(addr)[1]:
            raise checker.error((*path, "httpaddr"), f"port {port} is http.addr's already",
                                "the challenge listener needs a port of its own, usually :80")
    challenge = acme.get("challenge") or ACME_CHALLENGES[0]
    # By default the registry's own listener answers HTTP-01 when there is one.
    webroot_default = challenge == "http-01" and httpaddr is not None
    responder = acme.get("responder") or ("webroot" if webroot_default else "standalone")
    if responder == "webroot":
        alpn = challenge == "tls-alpn-01"
        if not acme.get("challengedir"):
            raise checker.error((*path, "challengedir"), "required with responder webroot",
                                "name the directory for challenge certificates (the TLS listener of http.addr "
                                "answers from it)" if alpn else
                                "name the directory for token files (the httpaddr listener serves it)")
        if alpn and tls is None:
            raise checker.error((*path, "responder"), "webroot answers tls-alpn-01 on the registry's TLS "
                                "listener, and http.tls is not set", "add http.tls.certificate and http.tls.key")
    elif challenge == "http-01" and httpaddr is not None:
        raise checker.error((*path, "responder"), "standalone cannot answer HTTP-01 while httpaddr listens",
                            "use responder: webroot with a challengedir: the httpaddr listener then answers")
    ports = {key: _number(checker, acme.get(key) or default, (*path, key), 1, 65535)
             for key, default in (("httpport", "80"), ("tlsport", "443"))}
    # The renewer's standalone responder cannot listen where the workers do (`regctl cert renew` may, before
    # the server starts).
    key = "tlsport" if challenge == "tls-alpn-01" else "httpport"
    port = ports[key]
    if acme.get("auto") and responder == "standalone" and port == parse_addr(addr)[1]:
        raise checker.error((*path, key), f"port {port} is http.addr's, where the registry listens",
                            "answer HTTP-01 with the registry's own listener (httpaddr and responder webroot), "
                            "or serve the registry on another port")
    for key, other in (("eabkid", "eabhmackey"), ("eabhmackey", "eabkid")):
        if acme.get(key) and not acme.get(other):
            raise checker.error((*path, other), f"required with acme.{key}",
                                "the CA hands out both: the key id and the HMAC key")
    renewdays = acme.get("renewdays") or None
    if acme.get("auto") and tls is None:
        raise checker.error((*path, "auto"), "needs http.tls: the certificate and key files to renew",
                            "add http.tls.certificate and http.tls.key")
    return {
        "directory": directory,
        "email": acme.get("email") or None,
        "domains": domains,
        "accountdir": acme["accountdir"],
        "challengedir": acme.get("challengedir") or None,
        "httpaddr": httpaddr,
        "redirectport": None if not acme.get("redirectport") else _number(
            checker, acme["redirectport"], (*path, "redirectport"), 1, 65535),
        "challenge": challenge,
        "responder": responder,
        **ports,
        "eabkid": acme.get("eabkid") or None,
        "eabhmackey": acme.get("eabhmackey") or None,
        "cabundle": acme.get("cabundle") or None,
        "renewdays": None if renewdays is None else _number(checker, renewdays, (*path, "renewdays"), 1, 3650),
        "auto": acme.get("auto", False),
        "checkinterval": _seconds(checker, acme.get("checkinterval") or ACME_CHECK_INTERVAL,
                                  (*path, "checkinterval"), MIN_ACME_CHECK_INTERVAL),
    }

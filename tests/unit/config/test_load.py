"""load_server_config: Distribution's config.yml and REGISTRY_* overrides, every error message exactly."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from regctl.config.load import load_server_config
from regctl.config.server import ServerConfig, parse_addr
from regctl.errors import ConfigError

# Distribution's stock registry:2 image config (cmd/registry/config-example.yml), verbatim.
STOCK = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

MINIMAL = "version: 0.1\nstorage: {filesystem: {rootdirectory: /data}}\n"
FORMAT = "Distribution's configuration format 0.1"

Write = Callable[[str], str]


def load(path: str | None, **environ: str) -> ServerConfig:
    config, warnings = load_server_config(path, environ)
    assert warnings == []
    return config


def error(path: str | None, **environ: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_server_config(path, environ)
    return info.value


# -- files ----------------------------------------------------------------------------------------------------
def test_stock_registry2_config_loads_as_is(write: Write) -> None:
    config, warnings = load_server_config(write(STOCK), {})
    assert config.model_dump() == {
        "version": "0.1",
        "log": {
            "level": "info",
            "formatter": "text",
            "fields": {"service": "registry"},
            "accesslog": {"disabled": False},
        },
        "http": {
            "addr": ":5000",
            "host": None,
            "secret": None,
            "relativeurls": False,
            "headers": {"X-Content-Type-Options": ["nosniff"]},
            "tls": None,
        },
        "storage": {
            "driver": "filesystem",
            "parameters": {"rootdirectory": "/var/lib/registry"},
            "delete": {"enabled": False},
        },
        "auth": {"htpasswd": None, "token": None},
        "tokenserver": None,
        "acme": None,
    }
    assert warnings == ["health: not supported yet, ignored"]


def test_no_file_gives_distribution_image_defaults() -> None:
    config = load(None)
    assert config.http.addr == ":5000"
    assert (config.storage.driver, config.storage.parameters) == ("filesystem", {"rootdirectory": "/var/lib/registry"})
    assert config == ServerConfig()


def test_registry_configuration_path_names_the_file(write: Write) -> None:
    config = load(None, REGISTRY_CONFIGURATION_PATH=write(MINIMAL))
    assert config.storage.parameters == {"rootdirectory": "/data"}


def test_every_served_key(write: Write) -> None:
    config = load(
        write(
            """\
            version: "0.1"
            log: {level: DEBUG, formatter: json, fields: {service: registry, n: 1}, accesslog: {disabled: true}}
            http:
              addr: 127.0.0.1:5001
              net: tcp
              host: https://registry.example.com
              secret: 0123
              relativeurls: yes
              headers: {X-Frame-Options: [DENY]}
            storage:
              inmemory:
              delete: {enabled: true}
              maintenance: {readonly: {enabled: false}}
            """
        )
    )
    assert config.log.model_dump() == {
        "level": "debug",
        "formatter": "json",
        "fields": {"service": "registry", "n": 1},
        "accesslog": {"disabled": True},
    }
    # Go reads a string field as written: "0123", not the octal 83.
    assert config.http.model_dump() == {
        "addr": "127.0.0.1:5001",
        "host": "https://registry.example.com",
        "secret": "0123",
        "relativeurls": True,
        "headers": {"X-Frame-Options": ["DENY"]},
        "tls": None,
    }
    assert config.storage.model_dump() == {"driver": "inmemory", "parameters": {}, "delete": {"enabled": True}}


def test_driver_parameters_keep_yaml_types(write: Write) -> None:
    config = load(write("version: 0.1\nstorage: {filesystem: {rootdirectory: /d, maxthreads: 50, since: 2024-01-02}}"))
    assert config.storage.parameters == {"rootdirectory": "/d", "maxthreads": 50, "since": "2024-01-02"}


def test_storage_as_a_string_names_the_driver(write: Write) -> None:
    assert load(write("version: 0.1\nstorage: inmemory\n")).storage.driver == "inmemory"


def test_deprecated_loglevel_is_used_when_log_level_is_unset(write: Write) -> None:
    assert load(write(MINIMAL + "loglevel: warn\n")).log.level == "warn"
    assert load(write(MINIMAL + "loglevel: warn\nlog: {level: error}\n")).log.level == "error"


def test_zero_valued_sections_are_not_in_use(write: Write) -> None:
    load(write(MINIMAL + "redis: {}\nauth: {}\nhttp: {tls: {certificate: ''}, debug: {addr: ''}}\nhealth: null\n"))


# -- environment ---------------------------------------------------------------------------------------------
def test_env_overrides_named_keys(write: Write) -> None:
    config = load(
        write(MINIMAL),
        REGISTRY_HTTP_ADDR="127.0.0.1:6000",
        REGISTRY_HTTP_HOST="https://r.example.com",
        REGISTRY_HTTP_RELATIVEURLS="true",
        REGISTRY_LOG_LEVEL="DEBUG",
        REGISTRY_LOG_FORMATTER="json",
        REGISTRY_LOG_ACCESSLOG_DISABLED="true",
        REGISTRY_STORAGE_DELETE_ENABLED="true",
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="/srv/registry",
    )
    assert config.http.addr == "127.0.0.1:6000"
    assert config.http.host == "https://r.example.com"
    assert config.http.relativeurls is True
    assert (config.log.level, config.log.formatter, config.log.accesslog.disabled) == ("debug", "json", True)
    assert config.storage.delete.enabled is True
    assert config.storage.parameters == {"rootdirectory": "/srv/registry"}


def test_env_applies_without_a_file() -> None:
    config = load(None, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="/srv", REGISTRY_HTTP_ADDR=":5001")
    assert (config.http.addr, config.storage.parameters) == (":5001", {"rootdirectory": "/srv"})


def test_env_string_fields_keep_the_text() -> None:
    config = load(None, REGISTRY_HTTP_SECRET="0123", REGISTRY_HTTP_HOST="yes")
    assert (config.http.secret, config.http.host) == ("0123", "yes")


def test_env_map_keys_are_lower_cased(write: Write) -> None:
    environ = {
        "REGISTRY_LOG_FIELDS_ENVIRONMENT": "prod",
        "REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS": "100",
        "REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS": "[DENY]",
    }
    config, _ = load_server_config(write(STOCK), environ)
    assert config.log.fields == {"service": "registry", "environment": "prod"}
    assert config.storage.parameters == {"rootdirectory": "/var/lib/registry", "maxthreads": 100}
    assert config.http.headers == {"X-Content-Type-Options": ["nosniff"], "x-frame-options": ["DENY"]}


def test_env_reuses_a_map_key_spelled_in_another_case(write: Write) -> None:
    path = write(MINIMAL + "http: {headers: {X-Frame-Options: [DENY]}}\n")
    config = load(path, **{"REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS": "[SAMEORIGIN]"})
    assert config.http.headers == {"X-Frame-Options": ["SAMEORIGIN"]}


def test_env_list_items_by_index(write: Write) -> None:
    config = load(
        write(MINIMAL + "http: {headers: {X-A: [one]}}\n"),
        **{"REGISTRY_HTTP_HEADERS_X-A_0": "first", "REGISTRY_HTTP_HEADERS_X-A_1": "second"},
    )
    assert config.http.headers == {"X-A": ["first", "second"]}


def test_env_storage_string_selects_the_driver_and_broader_keys_apply_first(write: Write) -> None:
    # REGISTRY_STORAGE replaces the whole section; REGISTRY_STORAGE_DELETE_ENABLED sorts after it.
    environ = {"REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_STORAGE": "inmemory"}
    config, _ = load_server_config(write(STOCK), environ)
    assert config.storage.model_dump() == {"driver": "inmemory", "parameters": {}, "delete": {"enabled": True}}


def test_env_goes_into_a_storage_given_as_a_string(write: Write) -> None:
    config = load(write("version: 0.1\nstorage: inmemory\n"), REGISTRY_STORAGE_DELETE_ENABLED="true")
    assert config.storage.model_dump() == {"driver": "inmemory", "parameters": {}, "delete": {"enabled": True}}


def test_env_section_as_yaml(write: Write) -> None:
    config = load(write(MINIMAL), REGISTRY_STORAGE="{filesystem: {rootdirectory: /x}, delete: {enabled: true}}")
    assert (config.storage.parameters, config.storage.delete.enabled) == ({"rootdirectory": "/x"}, True)


def test_unknown_env_vars_are_ignored_with_a_warning() -> None:
    # Kubernetes injects REGISTRY_PORT & co for a Service named "registry"; Distribution ignores them too.
    config, warnings = load_server_config(
        None,
        {
            "REGISTRY_PORT": "tcp://10.0.0.1:5000",
            "REGISTRY_HTTP_ADR": ":6000",
            "REGISTRY_HTTP_ADDR_X": "1",
            "registry_http_addr": ":7000",
            "REGISTRY_CONFIGURATION_PATH": "",
            "HOME": "/root",
        },
    )
    assert config.http.addr == ":5000"
    assert warnings == [
        "REGISTRY_HTTP_ADDR_X: unknown key http.addr.x, ignored",
        "REGISTRY_HTTP_ADR: unknown key http.adr, ignored (did you mean addr?)",
        "REGISTRY_PORT: unknown key port, ignored",
    ]


def test_env_for_an_ignored_section_warns_with_the_variable() -> None:
    _, warnings = load_server_config(None, {"REGISTRY_HEALTH_STORAGEDRIVER_ENABLED": "true"})
    assert warnings == ["health (from REGISTRY_HEALTH_STORAGEDRIVER_ENABLED): not supported yet, ignored"]


@pytest.mark.parametrize(
    ("environ", "message", "hint"),
    [
        (
            {"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"},
            "storage.delete.enabled (from REGISTRY_STORAGE_DELETE_ENABLED): value must be a boolean, got 'maybe'",
            "write true or false",
        ),
        (
            {"REGISTRY_AUTH": "htpasswd"},
            "auth.htpasswd.realm (from REGISTRY_AUTH): required",
            "add auth.htpasswd.realm, or set REGISTRY_AUTH_HTPASSWD_REALM",
        ),
        (
            {"REGISTRY_AUTH": "htpasswd", "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm"},
            "auth.htpasswd.path (from REGISTRY_AUTH): required",
            "add auth.htpasswd.path, or set REGISTRY_AUTH_HTPASSWD_PATH",
        ),
        (
            {"REGISTRY_AUTH": "silly"},
            "auth.silly (from REGISTRY_AUTH): not supported yet by regctl",
            "use auth.htpasswd or auth.token",
        ),
        (
            {"REGISTRY_AUTH": "token", "REGISTRY_AUTH_TOKEN_REALM": "https://r/token",
             "REGISTRY_AUTH_TOKEN_SERVICE": "s", "REGISTRY_AUTH_TOKEN_ISSUER": "i"},
            "auth.token.rootcertbundle (from REGISTRY_AUTH): required",
            "add auth.token.rootcertbundle, or set REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
        ),
        (
            {"REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS": "[ES256]"},
            "auth.token.signingalgorithms (from REGISTRY_AUTH_TOKEN_SIGNINGALGORITHMS): not supported yet by regctl",
            "remove it; regctl accepts ES256/384/512 and RS256/384/512",
        ),
        (
            {"REGISTRY_STORAGE": "s3", "REGISTRY_STORAGE_S3_BUCKET": "b"},
            "storage.s3 (from REGISTRY_STORAGE): not supported yet by regctl",
            "use storage.filesystem (a volume or a mounted network filesystem works)",
        ),
        (
            {"REGISTRY_STORAGE_S3_BUCKET": "b"},
            "storage (from REGISTRY_STORAGE_S3_BUCKET): more than one storage driver configured: filesystem, s3",
            "keep exactly one",
        ),
        (
            {"REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt"},
            "http.tls.key: required",
            "add http.tls.key, or set REGISTRY_HTTP_TLS_KEY",
        ),
        (
            {"REGISTRY_HTTP_TLS_CERTIFICATE": "/c.crt", "REGISTRY_HTTP_TLS_KEY": "/c.key",
             "REGISTRY_HTTP_TLS_MINIMUMTLS": "tls1.0"},
            "http.tls.minimumtls (from REGISTRY_HTTP_TLS_MINIMUMTLS): must be one of tls1.2, tls1.3, got 'tls1.0'",
            "fix or unset REGISTRY_HTTP_TLS_MINIMUMTLS",
        ),
        (
            {"REGISTRY_TOKENSERVER_EXPIRY": "5 minutes", **{f"REGISTRY_TOKENSERVER_{k}": "x" for k in
                                                            ("ISSUER", "SERVICE", "KEY", "HTPASSWD")}},
            "tokenserver.expiry (from REGISTRY_TOKENSERVER_EXPIRY): invalid duration '5 minutes'",
            "write seconds or a duration such as 5m, 1h, 90s",
        ),
        (
            {"REGISTRY_REDIS_ADDR": "redis:6379"},
            "redis (from REGISTRY_REDIS_ADDR): not supported yet by regctl",
            "remove redis; regctl caches in memory",
        ),
        (
            {"REGISTRY_HTTP_ADDR": "5000"},
            "http.addr (from REGISTRY_HTTP_ADDR): missing port in address '5000' (expected HOST:PORT, e.g. :5000)",
            "fix or unset REGISTRY_HTTP_ADDR",
        ),
        (
            {"REGISTRY_LOG_LEVEL": "verbose"},
            "log.level (from REGISTRY_LOG_LEVEL): must be one of error, warn, info, debug, got 'verbose'",
            "fix or unset REGISTRY_LOG_LEVEL",
        ),
        (
            {"REGISTRY_HTTP_HEADERS_X-A": "[unclosed"},
            "http.headers.x-a (from REGISTRY_HTTP_HEADERS_X-A): invalid YAML at line 1, column 10: "
            "expected ',' or ']', but got '<stream end>'",
            "fix or unset REGISTRY_HTTP_HEADERS_X-A",
        ),
        (
            {"REGISTRY_HTTP_HEADERS_X-A_1": "v"},
            "http.headers.x-a.1 (from REGISTRY_HTTP_HEADERS_X-A_1): list index 1 is past the end (length 0)",
            "fix or unset REGISTRY_HTTP_HEADERS_X-A_1",
        ),
        (
            {"REGISTRY_HTTP_HEADERS_X-A_first": "v"},
            "http.headers.x-a.first (from REGISTRY_HTTP_HEADERS_X-A_first): 'first' is not a list index",
            "fix or unset REGISTRY_HTTP_HEADERS_X-A_first",
        ),
    ],
)
def test_env_errors_name_the_variable(environ: dict[str, str], message: str, hint: str) -> None:
    exc = error(None, **environ)
    assert (str(exc), exc.hint) == (message, hint)


# -- file errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            MINIMAL + "http: {adr: ':5000'}\n",
            "http.adr: unknown key (did you mean addr?)",
            "valid keys under http: addr, net, host, prefix, secret, relativeurls, draintimeout, tls, headers, "
            "debug, http2",
        ),
        (
            "version: 0.1\nstroage: {inmemory: {}}\n",
            "stroage: unknown key (did you mean storage?)",
            "valid keys at the top level: version, loglevel, log, storage, auth, middleware, reporting, http, "
            "notifications, redis, health, catalog, proxy, compatibility, validation, policy, tokenserver, acme",
        ),
        (
            MINIMAL.replace("{rootdirectory: /data}", "{rootdirectory: /data}, delete: {enabled: maybe}"),
            "storage.delete.enabled: value must be a boolean, got 'maybe'",
            "write true or false",
        ),
        (
            MINIMAL.replace("{rootdirectory: /data}", "{rootdirectory: /data}, delete: {enabled: 'true'}"),
            "storage.delete.enabled: value must be a boolean, got 'true'",
            "write true or false",
        ),
        (
            MINIMAL.replace("{rootdirectory: /data}", "{rootdirectory: /data}, delete: [true]"),
            "storage.delete: expected a mapping, got a list",
            None,
        ),
        ("storage: inmemory\n", f"version: missing (regctl reads {FORMAT})", "add `version: 0.1`"),
        ("", f"version: missing (regctl reads {FORMAT})", "add `version: 0.1`"),
        (
            "version: 0.2\nstorage: inmemory\n",
            f"version: unsupported version '0.2' (regctl reads {FORMAT})",
            None,
        ),
        (
            "version: 0.1\n",
            "storage: no storage driver configured",
            "add one, e.g. storage: {filesystem: {rootdirectory: /var/lib/registry}}",
        ),
        (
            "version: 0.1\nstorage: {delete: {enabled: true}}\n",
            "storage: no storage driver configured",
            "add one, e.g. storage: {filesystem: {rootdirectory: /var/lib/registry}}",
        ),
        (
            "version: 0.1\nstorage: {filesystem: {}, inmemory: {}}\n",
            "storage: more than one storage driver configured: filesystem, inmemory",
            "keep exactly one",
        ),
        (
            "version: 0.1\nstorage: {filesytem: {}}\n",
            "storage.filesytem: unknown key (did you mean filesystem?)",
            "storage drivers: filesystem, inmemory; shared storage keys: delete, cache, maintenance, redirect, tag",
        ),
        (
            "version: 0.1\nstorage: {filesystem: {}, delet: {enabled: true}}\n",
            "storage.delet: unknown key (did you mean delete?)",
            "storage drivers: filesystem, inmemory; shared storage keys: delete, cache, maintenance, redirect, tag",
        ),
        (
            "version: 0.1\nstorage: {s3: {bucket: b}}\n",
            "storage.s3: not supported yet by regctl",
            "use storage.filesystem (a volume or a mounted network filesystem works)",
        ),
        (
            "version: 0.1\nstorage: {filesystem: [a]}\n",
            "storage.filesystem: expected a mapping, got a list",
            None,
        ),
        (
            MINIMAL + "log: {level: verbose}\n",
            "log.level: must be one of error, warn, info, debug, got 'verbose'",
            None,
        ),
        (
            MINIMAL + "log: {formatter: xml}\n",
            "log.formatter: must be one of text, json, logstash, got 'xml'",
            None,
        ),
        (MINIMAL + "log: {fields: [a]}\n", "log.fields: expected a mapping, got a list", None),
        (MINIMAL + "http: {addr: {a: 1}}\n", "http.addr: value must be a string, got a mapping", None),
        (
            MINIMAL + "http: {addr: '::1:5000'}\n",
            "http.addr: too many colons in address '::1:5000' (write IPv6 hosts in brackets: [::1]:5000)",
            None,
        ),
        (
            MINIMAL + "http: {addr: ':http'}\n",
            "http.addr: invalid port 'http' in address ':http' (expected a number from 0 to 65535)",
            None,
        ),
        (
            MINIMAL + "http: {headers: {X-A: nosniff}}\n",
            "http.headers.X-A: value must be a list, got 'nosniff'",
            None,
        ),
        (
            MINIMAL + "http: {headers: {X-A: [[a]]}}\n",
            "http.headers.X-A.0: value must be a string, got a list",
            None,
        ),
        (MINIMAL + "http: {net: unix}\n", "http.net: 'unix' is not supported yet by regctl (only tcp)", None),
        (
            MINIMAL + "http: {prefix: /registry/}\n",
            "http.prefix: not supported yet by regctl",
            "route the prefix in a reverse proxy, or remove http.prefix",
        ),
        (
            MINIMAL + "http: {tls: {key: /c.key}}\n",
            "http.tls.certificate: required",
            "add http.tls.certificate, or set REGISTRY_HTTP_TLS_CERTIFICATE",
        ),
        (
            MINIMAL + "http: {tls: {certificate: /c.crt, key: /c.key, clientcas: ['']}}\n",
            "http.tls.clientcas.0: empty path",
            "name a PEM file of CAs",
        ),
        (
            MINIMAL + "http: {tls: {certificate: /c.crt, key: /c.key, clientcas: /ca.pem}}\n",
            "http.tls.clientcas: value must be a list, got '/ca.pem'",
            None,
        ),
        (
            MINIMAL + "http: {tls: {letsencrypt: {email: a@example.com}}}\n",
            "http.tls.letsencrypt: not supported: Distribution's Let's Encrypt client uses a challenge Let's Encrypt "
            "turned off",
            "set http.tls.certificate and http.tls.key, and add an acme section with auto: true (see acme in the "
            "README)",
        ),
        (
            MINIMAL + "http: {tls: {certificate: /c.crt, key: /c.key, clientca: [/ca.pem]}}\n",
            "http.tls.clientca: unknown key (did you mean clientcas?)",
            "valid keys under http.tls: certificate, key, clientcas, minimumtls, ciphersuites, letsencrypt",
        ),
        (
            MINIMAL + "auth: {htpasswd: {realm: r}}\n",
            "auth.htpasswd.path: required",
            "add auth.htpasswd.path, or set REGISTRY_AUTH_HTPASSWD_PATH",
        ),
        (
            MINIMAL + "auth: {token: {}}\n",
            "auth.token.realm: required",
            "add auth.token.realm, or set REGISTRY_AUTH_TOKEN_REALM",
        ),
        (
            MINIMAL + "auth: htpasswd\n",
            "auth.htpasswd.realm: required",
            "add auth.htpasswd.realm, or set REGISTRY_AUTH_HTPASSWD_REALM",
        ),
        (
            MINIMAL + "auth: {htpasswd: {realm: r, path: /h}, token: {realm: r, service: s, issuer: i}}\n",
            "auth: more than one auth backend configured: htpasswd, token",
            "keep exactly one",
        ),
        (
            MINIMAL + "auth: {htpasswd: {realm: r, path: /h, paht: /x}}\n",
            "auth.htpasswd.paht: unknown key (did you mean path?)",
            "valid keys under auth.htpasswd: realm, path",
        ),

        (
            MINIMAL + "redis: {addr: 'localhost:6379'}\n",
            "redis: not supported yet by regctl",
            "remove redis; regctl caches in memory",
        ),
        (
            "version: 0.1\nstorage: {inmemory: {}, maintenance: {readonly: {enabled: true}}}",
            "storage.maintenance.readonly: not supported yet by regctl",
            "stop the server while garbage collecting instead",
        ),
        (MINIMAL + "log: [a]\n", "log: expected a mapping, got a list", None),
    ],
)
def test_file_errors_name_the_key(write: Write, text: str, message: str, hint: str | None) -> None:
    path = write(text)
    exc = error(path)
    assert str(exc) == message
    assert exc.hint == (hint or f"fix it in {path}")
    assert exc.env is None


def test_yaml_syntax_error(write: Write) -> None:
    path = write("version: 0.1\nstorage: {filesystem: {rootdirectory: /data}\n")
    assert str(error(path)) == (
        f"{path}: invalid YAML at line 3, column 1: expected ',' or '}}', but got '<stream end>'"
    )


def test_top_level_must_be_a_mapping(write: Write) -> None:
    path = write("- version\n")
    assert str(error(path)) == f"{path}: expected a mapping of configuration keys, got a list"


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yml")
    assert str(error(path)) == f"{path}: cannot read the configuration file: No such file or directory"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("health: {storagedriver: {enabled: true}}", "health"),
        ("notifications: {endpoints: [{name: x, url: 'http://h/'}]}", "notifications"),
        ("reporting: {bugsnag: {apikey: k}}", "reporting"),
        ("middleware: {registry: [{name: x}]}", "middleware"),
        ("validation: {disabled: true}", "validation"),
        ("compatibility: {schema1: {enabled: true}}", "compatibility"),
        ("proxy: {remoteurl: 'https://registry-1.docker.io'}", "proxy"),
        ("catalog: {maxentries: 100}", "catalog"),
        ("policy: {repository: {classes: [image]}}", "policy"),
        ("http: {debug: {addr: ':5001'}}", "http.debug"),
        ("http: {http2: {disabled: true}}", "http.http2"),
        ("http: {draintimeout: 60s}", "http.draintimeout"),
        ("log: {hooks: [{type: mail}]}", "log.hooks"),
        ("log: {reportcaller: true}", "log.reportcaller"),
    ],
)
def test_harmless_unsupported_keys_warn(write: Write, section: str, key: str) -> None:
    _, warnings = load_server_config(write(f"{MINIMAL}{section}\n"), {})
    assert warnings == [f"{key}: not supported yet, ignored"]


@pytest.mark.parametrize(
    ("shared", "key"),
    [
        ("cache: {blobdescriptorsize: 10000}", "storage.cache.blobdescriptorsize"),
        ("maintenance: {uploadpurging: {enabled: false, age: 168h}}", "storage.maintenance.uploadpurging"),
        ("redirect: {disable: true}", "storage.redirect"),
        ("tag: {concurrencylimit: 8}", "storage.tag"),
    ],
)
def test_harmless_storage_keys_warn(write: Write, shared: str, key: str) -> None:
    _, warnings = load_server_config(write(f"version: 0.1\nstorage: {{inmemory: {{}}, {shared}}}\n"), {})
    assert warnings == [f"{key}: not supported yet, ignored"]


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (":5000", ("", 5000)),
        ("0.0.0.0:5000", ("0.0.0.0", 5000)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:5000", ("::1", 5000)),
        ("[::]:5000", ("::", 5000)),
        ("localhost:5000", ("localhost", 5000)),
    ],
)
def test_parse_addr(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    "addr", ["", "5000", "::1:5000", ":", ":65536", ":-1", ":http", "host:\N{FULLWIDTH DIGIT FIVE}"]
)
def test_parse_addr_rejects(addr: str) -> None:
    with pytest.raises(ValueError):
        parse_addr(addr)


def test_inmemory_descriptor_cache_is_served_and_redis_is_not_yet(write: Write) -> None:
    config = "version: 0.1\nstorage: {inmemory: {}, cache: {blobdescriptor: inmemory}}\n"
    _, warnings = load_server_config(write(config), {})
    assert warnings == []
    with pytest.raises(ConfigError) as caught:
        load_server_config(write("version: 0.1\nstorage: {inmemory: {}, cache: {blobdescriptor: redis}}\n"), {})
    assert str(caught.value) == "storage.cache.blobdescriptor: must be one of inmemory, got 'redis'"


# -- TLS, auth and the token service ----------------------------------------------------------------------------
def test_seed_tls_and_htpasswd_variables() -> None:
    # The seed's `docker run` line for "Restricting access", variable for variable.
    config = load(
        None,
        REGISTRY_AUTH="htpasswd",
        REGISTRY_AUTH_HTPASSWD_REALM="Registry Realm",
        REGISTRY_AUTH_HTPASSWD_PATH="/auth/htpasswd",
        REGISTRY_HTTP_TLS_CERTIFICATE="/certs/domain.crt",
        REGISTRY_HTTP_TLS_KEY="/certs/domain.key",
    )
    htpasswd = {"realm": "Registry Realm", "path": "/auth/htpasswd"}
    assert config.auth.model_dump() == {"htpasswd": htpasswd, "token": None}
    assert config.http.tls is not None
    assert config.http.tls.model_dump() == {
        "certificate": "/certs/domain.crt",
        "key": "/certs/domain.key",
        "clientcas": [],
        "minimumtls": "tls1.2",
    }


def test_token_variables() -> None:
    config = load(
        None,
        REGISTRY_AUTH="token",
        REGISTRY_AUTH_TOKEN_REALM="https://auth.example.com/token",
        REGISTRY_AUTH_TOKEN_SERVICE="registry.example.com",
        REGISTRY_AUTH_TOKEN_ISSUER="auth.example.com",
        REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE="/certs/token.pem",
    )
    assert config.auth.token is not None
    assert config.auth.token.model_dump() == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "issuer": "auth.example.com",
        "rootcertbundle": "/certs/token.pem",
    }
    assert config.auth.htpasswd is None


def test_every_tls_and_auth_key_in_a_file(write: Write) -> None:
    config, warnings = load_server_config(
        write(
            MINIMAL
            + textwrap.dedent("""\
            http:
              tls:
                certificate: /certs/bundle.pem
                key: /certs/key.pem
                clientcas: [/certs/ca1.pem, /certs/ca2.pem]
                minimumtls: TLS1.3
                ciphersuites: [TLS_AES_128_GCM_SHA256]
            auth:
              token: {realm: "https://r/token", service: s, issuer: i, rootcertbundle: /b.pem, autoredirect: true,
                      jwks: /jwks.json}
            """)
        ),
        {},
    )
    assert config.http.tls is not None
    assert config.http.tls.model_dump() == {
        "certificate": "/certs/bundle.pem",
        "key": "/certs/key.pem",
        "clientcas": ["/certs/ca1.pem", "/certs/ca2.pem"],
        "minimumtls": "tls1.3",
    }
    assert warnings == [
        "http.tls.ciphersuites: not supported yet, ignored",
        "auth.token.autoredirect: not supported yet, ignored",
        "auth.token.jwks: not supported yet, ignored",
    ]


@pytest.mark.parametrize("auth", ["auth: none", "auth: {none: {}}", "auth: {}", "auth: null"])
def test_auth_none_means_no_auth(write: Write, auth: str) -> None:
    config = load(write(f"{MINIMAL}{auth}\n"))
    assert (config.auth.htpasswd, config.auth.token) == (None, None)


TOKENSERVER = """\
tokenserver:
  issuer: regctl
  service: registry.example.com
  key: /keys/token.key
  htpasswd: /auth/htpasswd
  expiry: 1h30m
  groups: {devs: [alice, bob]}
  rules:
    - {subjects: ["*"], repositories: ["{user}/*"], actions: ["*"]}
    - {subjects: ["@devs", carol], repositories: ["team/*"], actions: [pull, PUSH]}
    - {subjects: [anonymous], repositories: [public/*], actions: [pull]}
"""


def test_tokenserver(write: Write) -> None:
    config = load(write(MINIMAL + TOKENSERVER))
    assert config.tokenserver is not None
    assert config.tokenserver.model_dump() == {
        "issuer": "regctl",
        "service": "registry.example.com",
        "key": "/keys/token.key",
        "htpasswd": "/auth/htpasswd",
        "expiry": 5400,
        "groups": {"devs": ["alice", "bob"]},
        "rules": [
            {"subjects": ["*"], "repositories": ["{user}/*"], "actions": ["*"]},
            {"subjects": ["@devs", "carol"], "repositories": ["team/*"], "actions": ["pull", "push"]},
            {"subjects": ["anonymous"], "repositories": ["public/*"], "actions": ["pull"]},
        ],
    }


def test_tokenserver_takes_issuer_and_service_from_auth_token_which_then_needs_no_bundle(write: Write) -> None:
    text = MINIMAL + "auth: {token: {realm: 'https://r/auth/token', service: svc, issuer: iss}}\n"
    text += "tokenserver: {key: /k.pem, htpasswd: /h, expiry: 600}\n"
    config = load(write(text))
    assert config.tokenserver is not None
    assert (config.tokenserver.issuer, config.tokenserver.service, config.tokenserver.expiry) == ("iss", "svc", 600)
    assert (config.tokenserver.rules, config.auth.token and config.auth.token.rootcertbundle) == ([], None)


def test_tokenserver_from_variables() -> None:
    config = load(
        None,
        REGISTRY_TOKENSERVER_ISSUER="i",
        REGISTRY_TOKENSERVER_SERVICE="s",
        REGISTRY_TOKENSERVER_KEY="/k",
        REGISTRY_TOKENSERVER_HTPASSWD="/h",
        REGISTRY_TOKENSERVER_GROUPS_DEVS="[alice]",
        REGISTRY_TOKENSERVER_RULES="[{subjects: ['@devs'], repositories: ['team/*'], actions: [pull]}]",
    )
    assert config.tokenserver is not None
    assert (config.tokenserver.expiry, config.tokenserver.groups) == (300, {"devs": ["alice"]})
    assert config.tokenserver.rules[0].subjects == ["@devs"]


@pytest.mark.parametrize(
    ("change", "message", "hint"),
    [
        (("  issuer: regctl\n", ""), "tokenserver.issuer: required", "add tokenserver.issuer (or auth.token.issuer)"),
        (
            ("  key: /keys/token.key\n", ""),
            "tokenserver.key: required",
            "add tokenserver.key, or set REGISTRY_TOKENSERVER_KEY",
        ),
        (("1h30m", "30s"), "tokenserver.expiry: must be at least 60s, got '30s'", None),
        (
            ("1h30m", "soon"),
            "tokenserver.expiry: invalid duration 'soon'",
            "write seconds or a duration such as 5m, 1h, 90s",
        ),
        (("@devs", "@ops"), "tokenserver.rules.1.subjects: unknown group 'ops'", "define it under tokenserver.groups"),
        (
            ("{user}/*", "{name}/*"),
            "tokenserver.rules.0.repositories: unknown placeholder {name} in '{name}/*'",
            "the only placeholder is {user}",
        ),
        (
            ("[pull, PUSH]", "[pull, pusj]"),
            "tokenserver.rules.1.actions.1: must be one of pull, push, delete, *, got 'pusj'",
            None,
        ),
        (
            ("[anonymous]", "[]"),
            "tokenserver.rules.2.subjects: must be a non-empty list",
            "see tokenserver in the README",
        ),
        (("[alice, bob]", "[]"), "tokenserver.groups.devs: must list user names", None),
        (
            ("actions: [pull]}", "action: [pull]}"),
            "tokenserver.rules.2.action: unknown key (did you mean actions?)",
            "valid keys under tokenserver.rules.2: subjects, repositories, actions",
        ),
    ],
)
def test_tokenserver_errors_name_the_key(write: Write, change: tuple[str, str], message: str, hint: str | None) -> None:
    old, new = change
    assert old in TOKENSERVER
    path = write(MINIMAL + TOKENSERVER.replace(old, new, 1))
    exc = error(path)
    assert str(exc) == message
    assert exc.hint == (hint or f"fix it in {path}")

"""The error table: every error the API can return, with its spec code and HTTP status.

Handlers raise ``RegistryError(ErrorCode.X, detail)``; one renderer (``render``) turns it into the
``{"errors": [...]}`` envelope of the OCI Distribution Spec ("Error Codes"). Handlers never pick a status.
"""

from __future__ import annotations

import enum
import json
from typing import Any


class ErrorCode(enum.Enum):
    """(spec code, message, HTTP status). Member names may differ from codes when one code has two statuses."""

    BLOB_UNKNOWN = ("BLOB_UNKNOWN", "blob unknown to registry", 404)
    BLOB_UPLOAD_INVALID = ("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
    BLOB_UPLOAD_UNKNOWN = ("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
    DIGEST_INVALID = ("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
    MANIFEST_BLOB_UNKNOWN = ("MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400)
    MANIFEST_INVALID = ("MANIFEST_INVALID", "manifest invalid", 400)
    MANIFEST_TOO_BIG = ("MANIFEST_INVALID", "manifest too big", 413)
    MANIFEST_UNKNOWN = ("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
    NAME_INVALID = ("NAME_INVALID", "invalid repository name", 400)
    NAME_UNKNOWN = ("NAME_UNKNOWN", "repository name not known to registry", 404)
    SIZE_INVALID = ("SIZE_INVALID", "provided length did not match content length", 400)
    TAG_INVALID = ("TAG_INVALID", "manifest tag did not match URI", 400)
    UNAUTHORIZED = ("UNAUTHORIZED", "authentication required", 401)
    DENIED = ("DENIED", "requested access to the resource is denied", 403)
    UNSUPPORTED = ("UNSUPPORTED", "the operation is unsupported", 405)
    METHOD_UNKNOWN = ("UNSUPPORTED", "method not allowed on this route", 405)
    RANGE_INVALID = ("RANGE_INVALID", "invalid content range", 416)
    PAGINATION_NUMBER_INVALID = ("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
    NOT_FOUND = ("NOT_FOUND", "no route matches the request", 404)
    UNKNOWN = ("UNKNOWN", "unknown error", 500)

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    @property
    def status(self) -> int:
        return self.value[2]


class RegistryError(Exception):
    """An API error: one code, an optional detail (any JSON value), optional extra response headers."""

    def __init__(self, code: ErrorCode, detail: Any = None, *, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.message = message or code.message
        self.headers = headers or {}

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


def render(*errors: RegistryError) -> tuple[int, bytes]:
    """The status (taken from the first error, as Distribution's ServeJSON does) and the JSON envelope."""
    body = json.dumps({"errors": [e.as_dict() for e in errors]}).encode()
    return errors[0].code.status, body

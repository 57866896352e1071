"""Where things live in storage: CNCF Distribution's v2 tree, so a ``registry:2`` volume is served as is.

::

    /docker/registry/v2/
      blobs/<alg>/<first two hex>/<hex>/data          content of every blob and manifest, stored once
      repositories/<name>/
        _layers/<alg>/<hex>/link                      "<alg>:<hex>": the blob belongs to this repository
        _manifests/
          revisions/<alg>/<hex>/link                  the manifest belongs to this repository
          tags/<tag>/current/link                     the digest the tag points at now
          tags/<tag>/index/<alg>/<hex>/link           every digest the tag has pointed at
        _uploads/<uuid>/
          data                                        bytes received so far
          startedat                                   RFC 3339 start time

Repository name components never start with ``_`` (see ``reference.NAME_RE``), which is how a walk tells
repositories from the ``_layers``/``_manifests``/``_uploads`` directories inside them.
"""

from __future__ import annotations

from regctl.registry.reference import Digest

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"


def blob_dir(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.hex[:2]}/{d.hex}"


def blob_data(d: Digest) -> str:
    return f"{blob_dir(d)}/data"


def repo_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{d.algorithm}/{d.hex}/link"


def manifests_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests"


def revisions_dir(name: str, algorithm: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{algorithm}"


def revision_link(name: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{d.algorithm}/{d.hex}/link"


def tags_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current/link"


def tag_index_link(name: str, tag: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/index/{d.algorithm}/{d.hex}/link"


def uploads_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_started_at(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/startedat"

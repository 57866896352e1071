"""``regctl image build``: the server image, from the regctl that is installed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.group(short_help="Build the registry server image.")
def image() -> None:
    """The server image that `regctl up` runs (and a drop-in for registry:2 in your own `docker run`)."""


@image.command(
    short_help="Build the server image from the installed regctl.",
    epilog="""\b
Examples:
  regctl image build                                  # regctl/registry:<version> on python:3.12-slim
  regctl image build --base-image debian-python:12    # a base of your own with Python 3.11+
  regctl image build -t registry.example.com/regctl:1
  docker run -d -p 5000:5000 --restart=always --name registry regctl/registry:<version>
""",
)
@click.option(
    "--base-image",
    metavar="IMAGE",
    help="The base image (it needs Python 3.11+; pulled only when not on this host). "
    "Default: $REGCTL_BASE_IMAGE, else image.base in regctl.yaml, else python:3.12-slim.",
)
@click.option(
    "-t",
    "--tag",
    metavar="NAME:TAG",
    help="The image to create. Default: image.name:image.tag in regctl.yaml, else regctl/registry:<version>.",
)
@click.pass_obj
def build(state: CliState, base_image: str | None, tag: str | None) -> None:
    """Build the server image: a wheel of the installed regctl and wheels of its dependencies for the base
    image's Python (downloaded on this host and cached in $XDG_CACHE_HOME/regctl/wheels), installed inside
    the build with no network. The image listens on 5000, keeps data in /var/lib/registry, reads
    /etc/docker/registry/config.yml and REGISTRY_* variables like registry:2, and serves as the user registry
    (uid 1000)."""
    from regctl.deploy.image import build_image, default_tag, resolve_base_image
    from regctl.deploy.instance import InstanceLayout, find_instance, load_config, require_instance
    from regctl.deploy.runtime import connect

    # An instance is optional here: its image settings apply when there is one.
    root = require_instance(state.instance_dir).root if state.instance_dir else find_instance()
    config = load_config(InstanceLayout(root)) if root is not None else None
    base = resolve_base_image(base_image, os.environ, config)
    ref = tag or default_tag(config)
    client, _ = connect()
    built = build_image(client, ref, base, state.terminal)
    state.terminal.display_success(f"Built {ref} ({built.id.removeprefix('sha256:')[:12]}) on {base}")
    state.terminal.display_data(ref)

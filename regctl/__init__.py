"""regctl: a private container registry server and the CLI that operates it."""

__version__ = "0.1.0"

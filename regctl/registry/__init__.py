"""The registry server: OCI Distribution Spec v1.1 over aiohttp. No Click, no Docker SDK."""

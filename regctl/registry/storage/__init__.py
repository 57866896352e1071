"""Storage: a dumb async key/value driver underneath, registry semantics (blobs, manifests, tags) on top."""

"""Configuration models and loaders."""

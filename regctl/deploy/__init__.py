"""The operations library behind the CLI: instances, rendering, images and runtimes. No Click imports."""

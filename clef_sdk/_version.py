"""The package version, read by the build (pyproject.toml) and shown by ``clef --version``."""

__version__ = "0.1.0"

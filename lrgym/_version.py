"""The package version, in a module of its own so that lrgym's modules can read it
without importing the top-level package (which imports them)."""

__version__ = "0.1.0"

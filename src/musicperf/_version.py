"""The version of musicperf (a module of its own so any layer may import it without the package root)."""

__version__ = "0.1.0"

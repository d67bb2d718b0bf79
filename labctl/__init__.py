"""labctl: instrument control and experiments for solid-state battery labs."""

from importlib.metadata import version

__version__ = version("labctl")

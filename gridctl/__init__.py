"""gridctl: neighbourhood energy microgrid controller."""

__version__ = "0.1.0"

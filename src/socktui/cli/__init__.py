"""The command-line front ends: ``socktui`` (the TUI), ``socktui check`` and ``socktui fix``."""

from .main import main

__all__ = ["main"]

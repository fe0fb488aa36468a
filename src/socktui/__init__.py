"""socktui: see and fix Unix sockets shared with Docker containers."""

__version__ = "0.1.0"

"""Live sources: what tells socktui that something changed, without polling the daemon.

One module per source, each a blocking ``run(..., stop)`` meant for its own thread; callbacks run on the source's
thread. No Textual or Rich here: this is the core.

- :mod:`.dirs`: the parent directories of the socket sources, through inotify (socktui's own reader; watchfiles as
  the fallback).
- :mod:`.events`: the engine's container events, reconnecting with backoff when the engine goes away.
- :mod:`.exits`: the listening processes, through ``pidfd_open``.
- :mod:`.reprobe`: a re-read of the kernel's socket tables (no connect), for staleness nothing else announces.
- :mod:`.wake`: the pipe that wakes a source sleeping in ``poll``.
"""

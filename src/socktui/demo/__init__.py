"""``socktui demo``: a private Docker daemon with one broken socket of every kind, and nothing left behind.

Core modules only (no Textual): ``daemon`` (a throw-away dockerd of our own), ``image`` (a busybox-static image made
with ``docker import``), ``sockserver`` (the small server program) and ``servers`` (running it), ``scenario`` (one
container per failure), ``state`` (what was made, on disk, so a crash of anything is cleaned up by ``teardown``) and
``supervisor`` (the process that outlives the TUI). The demo's keys live in ``socktui.ui.demo``.
"""

"""App-wide messages. Workers post these from threads (``post_message`` is thread-safe); the app applies them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..model import CheckReport, ContainerReport
from ..session import Change


@dataclass
class ReportReady(Message):
    """A whole new look at everything."""

    report: CheckReport


@dataclass
class Listed(Message):
    """The first list is in; verdicts follow. Lets the screen show every container at once."""

    report: CheckReport


@dataclass
class ContainersUpdated(Message):
    """Some containers were re-decided (or removed) after a live change."""

    reports: list[ContainerReport]
    removed: list[str]
    changes: list[Change]


@dataclass
class EngineProblem(Message):
    """The engine could not be reached; ``message`` says where and what to do."""

    message: str


@dataclass
class EngineRecovered(Message):
    pass


@dataclass
class LogLine(Message):
    text: str
    style: str = ""

"""App-wide messages. Workers post these from threads (``post_message`` is thread-safe); the app applies them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..live import Update


class Updated(Message):
    """The Monitor's latest :class:`socktui.live.Update`.

    A newer one replaces an older one still waiting in the queue: it absorbs the older's rows and log lines
    (``Update.then``), so nothing is lost and a screen that falls behind a busy host catches up in one redraw.
    """

    def __init__(self, update: Update) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        # Textual asks the message it is about to handle whether ``message``, queued right behind it, may take its
        # place; it may, once it carries this one's content as well.
        if not isinstance(message, Updated):
            return False
        message.update = self.update.then(message.update)
        return True


@dataclass
class LogLine(Message):
    text: str
    style: str = ""

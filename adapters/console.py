"""The console adapter: the embedded default when no chat token is set.

Announcements are printed to stdout (a direct message marked as one, from
the same presenter as every platform); each line typed on stdin is a command
answered there. End of input does not stop the bot (it may be started with
stdin closed, e.g. in a container): only SIGINT/SIGTERM do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, TextIO

from adapters.boundary import ask_core
from bot.models import Announcement, Caller, Delivered, Platform
from bot.plaintext import render_announcement, render_edit, render_text

if TYPE_CHECKING:
    from bot.app import AdapterContext
    from bot.ports import CommandHandler

log = logging.getLogger("showbot.console")

CHANNEL = "terminal"
HINT = ("showbot console: type a command and press Enter (`help` lists them, `status` shows the feeds); "
        "announcements appear here. Ctrl-C stops.")


class ConsoleAdapter:
    platform = Platform.CONSOLE

    def __init__(self, handler: CommandHandler, *, stdin: TextIO, stdout: TextIO, user_id: str = "operator") -> None:
        self._handler = handler
        self._stdin = stdin
        self._stdout = stdout
        self._caller = Caller(Platform.CONSOLE, user_id, CHANNEL, is_moderator=True,
                              display_name="operator")
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return True

    async def start(self) -> None:
        # Without it a new operator faces a silent terminal and can't tell a
        # waiting bot from a stuck one.
        self._write(HINT)
        self._task = asyncio.create_task(self._read_commands(), name="showbot-console")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def deliver(self, announcement: Announcement) -> Delivered:
        self._write(render_announcement(announcement))
        return Delivered(message_id=f"console-{announcement.outbox_id}")

    async def edit(self, announcement: Announcement) -> Delivered:
        # A printed line can't change: say what changed on a line of its own.
        self._write(render_edit(announcement))
        return Delivered(message_id=announcement.edit_of)

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        return None  # a terminal keeps no history we can read back

    def _write(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()

    async def _read_commands(self) -> None:
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def reader() -> None:
            # A daemon thread: a blocking readline must never keep the process
            # alive at exit (the default executor's threads are joined).
            try:
                for line in self._stdin:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except (OSError, ValueError):
                pass
            finally:
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, None)
                except RuntimeError:
                    pass  # the loop is already closed

        threading.Thread(target=reader, name="showbot-stdin", daemon=True).start()
        while (line := await lines.get()) is not None:
            text = line.strip()
            if not text:
                continue
            reply = await ask_core(self._handler, text, self._caller)
            self._write(render_text(reply))
        log.info("console input closed; still announcing (stop with Ctrl-C)")


def build(context: "AdapterContext") -> ConsoleAdapter | None:
    if context.chat_adapters and not context.force_console:
        return None
    return ConsoleAdapter(context.handler, stdin=context.console_in, stdout=context.console_out)

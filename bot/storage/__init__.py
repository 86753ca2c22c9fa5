"""Storage behind one interface; SQLite specifics (FTS5, pragmas) stay inside."""

from bot.storage.store import OutboxRow, PollWrite, RouteSeed, SnapshotRow, Store

__all__ = ["OutboxRow", "PollWrite", "RouteSeed", "SnapshotRow", "Store"]

"""Storage behind one interface; SQLite specifics (FTS5, pragmas) stay inside."""

from bot.storage.store import (
    DeliveryOutcome,
    DeliveryResult,
    OutboxRow,
    OutboxStatus,
    PollWrite,
    RouteSeed,
    SnapshotRow,
    Store,
)

__all__ = [
    "DeliveryOutcome",
    "DeliveryResult",
    "OutboxRow",
    "OutboxStatus",
    "PollWrite",
    "RouteSeed",
    "SnapshotRow",
    "Store",
]

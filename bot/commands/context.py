"""What every handler needs, wired once by ``Commands``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

from bot.clock import Clock
from bot.hybrid import SemanticModel
from bot.metrics import Metrics
from bot.models import ParsedFeed
from bot.search import SynonymIndex
from bot.storage import Storage

Preview = Callable[[str], Awaitable[ParsedFeed]]
Notify = Callable[[], Awaitable[None]]
Health = Callable[[], Mapping[str, bool]]
Queued = Callable[[], None]
# The differences between the config file and the database, one line each.
Drift = Callable[[], Awaitable[list[str]]]
# The catalogue's title words, most frequent first (for "did you mean" on a search).
Vocabulary = Callable[[], Awaitable[list[str]]]


@dataclass(slots=True)
class Context:
    store: Storage
    clock: Clock
    synonyms: SynonymIndex
    rng: random.Random
    page_size: int = 5
    preview: Preview | None = None
    on_sources_changed: Notify | None = None
    health: Health | None = None
    max_topics_per_member: int = 25
    metrics: Metrics = field(default_factory=Metrics)  # the no-op unless the HTTP server is on
    on_queued: Queued | None = None  # something was put in the outbox: deliver it now
    drift: Drift | None = None
    vocabulary: Vocabulary | None = None
    semantic: SemanticModel | None = None  # None or not loadable: lexical search only

"""The ``profile_snapshots`` table: X profile snapshots as a time series.

Appended to ``bot.storage.schema.MIGRATIONS`` by the store's owner (one
migration = one string, run in the user_version transaction). Counts are
NULL when the snapshot did not say (a page form without a post count);
``raw_json`` is ``bot.sources.x.snapshot_to_json`` so a snapshot can be read
back whole (recent posts included) for the next diff. The unique key makes
recording a snapshot idempotent: a retried poll cannot store it twice.
"""

from __future__ import annotations

X_MIGRATION = """
CREATE TABLE profile_snapshots (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    taken_at TEXT NOT NULL,
    followers INTEGER,
    following INTEGER,
    posts INTEGER,
    bio TEXT,
    pinned_id TEXT,
    pinned_text TEXT,
    pinned_url TEXT,
    raw_json TEXT NOT NULL
);
-- The previous snapshot is "ORDER BY taken_at DESC LIMIT 1" per source, and
-- /stats draws followers over time: both walk this index.
CREATE UNIQUE INDEX profile_snapshots_source_taken ON profile_snapshots (source_id, taken_at);
"""

"""Schema migrations, keyed by ``PRAGMA user_version``.

Each entry of MIGRATIONS moves the schema from version i to i+1 and runs in
the same transaction as the user_version bump, so a crash mid-migration
leaves the old version intact.
"""

from __future__ import annotations

# chapters_fts rowid = item_id * CHAPTER_ROWID_SPAN + position (migration 2):
# a chapter hit names its item without a join.
CHAPTER_ROWID_SPAN = 10_000

MIGRATIONS: list[str] = [
    # 0 -> 1: the spine.
    """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        url TEXT,
        content TEXT NOT NULL,
        every_s INTEGER NOT NULL,
        announce_on_first_poll INTEGER NOT NULL DEFAULT 0,
        max_age_s INTEGER NOT NULL,
        handle TEXT,
        provider TEXT,
        api_base_url TEXT,
        paused INTEGER NOT NULL DEFAULT 0,
        synced INTEGER NOT NULL DEFAULT 0,
        etag TEXT,
        last_modified TEXT,
        body_hash TEXT,
        last_polled_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_poll_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        identity TEXT NOT NULL,
        guid TEXT,
        link TEXT,
        norm_link TEXT,
        title_key TEXT,
        content_hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        published_at TEXT,
        updated_at TEXT,
        first_seen_at TEXT NOT NULL,
        duration_s INTEGER,
        episode_number INTEGER,
        enclosure_url TEXT,
        image_url TEXT,
        video_id TEXT,
        UNIQUE (source_id, identity)
    );
    CREATE INDEX items_published ON items (published_at);
    CREATE INDEX items_source_published ON items (source_id, published_at);
    CREATE INDEX items_episode_number ON items (episode_number);
    CREATE TABLE chapters (
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        title TEXT NOT NULL,
        PRIMARY KEY (item_id, position)
    );
    -- The search index: rowid = items.id. Written by the store in the same
    -- transaction as its item (not by triggers: chapters arrive after their
    -- item and a per-chapter trigger would rewrite the row ten times).
    -- ``kind`` is a column so "episodes on X" intersects inside FTS5.
    CREATE VIRTUAL TABLE catalog_fts USING fts5(
        title, chapters, summary, kind,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    -- A removed source cascades to its items; their index rows must go too.
    CREATE TRIGGER catalog_fts_item_delete AFTER DELETE ON items BEGIN DELETE FROM catalog_fts WHERE rowid = old.id; END;
    CREATE TABLE routes (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        kinds TEXT NOT NULL,
        mention TEXT,
        broken_reason TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (platform, channel)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        source_id INTEGER REFERENCES sources(id) ON DELETE SET NULL,
        item_id INTEGER REFERENCES items(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT,
        payload TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    -- One event of a kind per item, ever: the last line of defence against re-announcing.
    CREATE UNIQUE INDEX events_item_kind ON events (item_id, kind) WHERE item_id IS NOT NULL;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        route_id INTEGER REFERENCES routes(id) ON DELETE SET NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        mention TEXT,
        idempotency_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'pending',  -- pending | sending | sent | failed
        outcome_unknown INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        UNIQUE (event_id, platform, channel)
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- Which config entries were already seeded into the database: after the
    -- first start the database is the truth, so a source a moderator removed
    -- is not brought back by the next restart.
    CREATE TABLE config_seeds (
        key TEXT PRIMARY KEY,
        seeded_at TEXT NOT NULL
    );
    """,
    # 1 -> 2: commands (audit, personal subscriptions, feed filters) and
    # chapter-level search. Trigger bodies stay on one line: the migration
    # runner splits statements at lines ending in ';'.
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (platform, user_id, topic)
    );
    CREATE TABLE filters (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        mode TEXT NOT NULL CHECK (mode IN ('include', 'exclude')),
        pattern TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (source_id, mode, pattern)
    );
    CREATE INDEX filters_source ON filters (source_id);
    -- One row per chapter title; rowid = item_id * 10000 + position, so a
    -- chapter hit names its item and position without a join, and one
    -- item's chapters are a rowid range. Kept in sync by triggers on chapters
    -- (inserts: by the store since migration 4, see there).
    CREATE VIRTUAL TABLE chapters_fts USING fts5(
        title,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER chapters_fts_insert AFTER INSERT ON chapters WHEN new.position < 10000 BEGIN INSERT INTO chapters_fts (rowid, title) VALUES (new.item_id * 10000 + new.position, new.title); END;
    CREATE TRIGGER chapters_fts_delete AFTER DELETE ON chapters BEGIN DELETE FROM chapters_fts WHERE rowid = old.item_id * 10000 + old.position; END;
    CREATE TRIGGER chapters_fts_update AFTER UPDATE ON chapters BEGIN DELETE FROM chapters_fts WHERE rowid = old.item_id * 10000 + old.position; INSERT INTO chapters_fts (rowid, title) SELECT new.item_id * 10000 + new.position, new.title WHERE new.position < 10000; END;
    INSERT INTO chapters_fts (rowid, title) SELECT item_id * 10000 + position, title FROM chapters WHERE position < 10000;
    """,
    # 2 -> 3: X profile snapshots as a time series. Counts are NULL when a
    # snapshot did not say; raw_json (bot.sources.x.snapshot_to_json) reads
    # back whole for the next diff; the unique key makes recording a snapshot
    # idempotent. sources.cursor holds a provider's resume point (X since_id).
    """
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
    ALTER TABLE sources ADD COLUMN cursor TEXT;
    ALTER TABLE routes ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;
    """,
    # 3 -> 4: chapter titles enter chapters_fts in one batch written by the
    # store (bot.storage.store._insert_chapters), not row by row from an
    # insert trigger: a FTS5 insert fired by a trigger cost ~25 us per row,
    # 100 ms of a 540-episode first poll (5,400 chapters). Deletes and
    # updates stay on triggers: they are rare and touch few rows.
    """
    DROP TRIGGER chapters_fts_insert;
    """,
    # 4 -> 5: delivery under faults.
    # - A row names its destination explicitly (a channel, or a user for a
    #   direct message) instead of a "user:" prefix on the channel.
    # - A row being delivered is claimed by one process with a lease
    #   (lease_owner, lease_until); a process that dies mid-delivery is taken
    #   over once the lease runs out, and the platform is asked first.
    #   Rows left 'sending' by an older showbot get an expired lease.
    # - first_attempt_at bounds the platform lookup for an earlier post.
    # - outbox_unsent finds each destination's head (its oldest unsent row):
    #   rows of one destination go out strictly in id order.
    # - poll_claims: one poll of a source at a time, across processes.
    """
    CREATE TABLE outbox_v5 (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        route_id INTEGER REFERENCES routes(id) ON DELETE SET NULL,
        platform TEXT NOT NULL,
        dest_kind TEXT NOT NULL DEFAULT 'channel' CHECK (dest_kind IN ('channel', 'user')),
        dest_id TEXT NOT NULL,
        mention TEXT,
        idempotency_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
        outcome_unknown INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_attempt_at TEXT,
        lease_owner TEXT,
        lease_until TEXT,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        UNIQUE (event_id, platform, dest_kind, dest_id)
    );
    INSERT INTO outbox_v5 (id, event_id, route_id, platform, dest_kind, dest_id, mention,
        idempotency_key, status, outcome_unknown, attempts, next_attempt_at, lease_owner,
        lease_until, last_error, message_id, created_at, sent_at)
    SELECT id, event_id, route_id, platform,
        CASE WHEN channel LIKE 'user:%' THEN 'user' ELSE 'channel' END,
        CASE WHEN channel LIKE 'user:%' THEN substr(channel, 6) ELSE channel END,
        mention, idempotency_key, status, outcome_unknown, attempts, next_attempt_at,
        CASE WHEN status = 'sending' THEN 'showbot<5' END,
        CASE WHEN status = 'sending' THEN '1970-01-01T00:00:00.000000+00:00' END,
        last_error, message_id, created_at, sent_at
    FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v5 RENAME TO outbox;
    CREATE INDEX outbox_unsent ON outbox (platform, dest_kind, dest_id, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_event ON outbox (event_id);
    CREATE TABLE poll_claims (
        source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    """,
    # 5 -> 6: named leases for work one instance does at a time that is not
    # a row of its own (a Discord gateway shard: "discord.shard.0").
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    """,
    # 6 -> 7: decision records, for "why wasn't this announced?" (bot.verdicts,
    # bot.why). Written by write_poll in the poll's own transaction, as the
    # deciders made them; NULL on rows stored before this migration.
    # - items.decision: the item's fate (baseline, too old, filtered by
    #   which rule, announced) as bot.verdicts JSON.
    # - events.routing: the routes an event was queued for, and those that
    #   take its kind but were broken or had the item already.
    # - outbox.message_url: a link to the posted message, where the platform
    #   gives one (written with the delivery result).
    """
    ALTER TABLE items ADD COLUMN decision TEXT;
    ALTER TABLE events ADD COLUMN routing TEXT;
    ALTER TABLE outbox ADD COLUMN message_url TEXT;
    """,
    # 7 -> 8: moderators shape what is posted (issue #12).
    # - routes: feeds (comma-joined source names, '' = every source), a
    #   message template, and flood control: pace_s (least seconds between
    #   two posts), daily_cap (posts a UTC day), digest (daily | weekly).
    # - events.purpose: 'announce' | 'test' | 'digest'. Only announcements
    #   are unique per (item, kind): `announce test here` and a digest show an
    #   item that may have been announced already.
    # - outbox: rows a digest route holds back are 'held' (out of the
    #   destination's queue, so they block nothing), then 'digested' into one
    #   digest (digest_id) -- never dropped. SQLite cannot change a CHECK in
    #   place: the table is copied as in migration 5 (message_url kept).
    # - digests: one per (route, period end), a unique key, so two instances
    #   can never both post the same period's digest.
    """
    ALTER TABLE routes ADD COLUMN feeds TEXT NOT NULL DEFAULT '';
    ALTER TABLE routes ADD COLUMN template TEXT;
    ALTER TABLE routes ADD COLUMN pace_s INTEGER;
    ALTER TABLE routes ADD COLUMN daily_cap INTEGER;
    ALTER TABLE routes ADD COLUMN digest TEXT CHECK (digest IN ('daily', 'weekly'));
    ALTER TABLE events ADD COLUMN purpose TEXT NOT NULL DEFAULT 'announce' CHECK (purpose IN ('announce', 'test', 'digest'));
    DROP INDEX events_item_kind;
    CREATE UNIQUE INDEX events_item_kind ON events (item_id, kind) WHERE item_id IS NOT NULL AND purpose = 'announce';
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
        period_end TEXT NOT NULL,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        UNIQUE (route_id, period_end)
    );
    CREATE TABLE outbox_v8 (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        route_id INTEGER REFERENCES routes(id) ON DELETE SET NULL,
        platform TEXT NOT NULL,
        dest_kind TEXT NOT NULL DEFAULT 'channel' CHECK (dest_kind IN ('channel', 'user')),
        dest_id TEXT NOT NULL,
        mention TEXT,
        idempotency_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'held', 'digested')),
        outcome_unknown INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_attempt_at TEXT,
        lease_owner TEXT,
        lease_until TEXT,
        last_error TEXT,
        message_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        message_url TEXT,
        digest_id INTEGER REFERENCES digests(id) ON DELETE SET NULL,
        UNIQUE (event_id, platform, dest_kind, dest_id)
    );
    INSERT INTO outbox_v8 (id, event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key,
        status, outcome_unknown, attempts, next_attempt_at, first_attempt_at, lease_owner, lease_until,
        last_error, message_id, created_at, sent_at, message_url)
    SELECT id, event_id, route_id, platform, dest_kind, dest_id, mention, idempotency_key,
        status, outcome_unknown, attempts, next_attempt_at, first_attempt_at, lease_owner, lease_until,
        last_error, message_id, created_at, sent_at, message_url
    FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v8 RENAME TO outbox;
    CREATE INDEX outbox_unsent ON outbox (platform, dest_kind, dest_id, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_event ON outbox (event_id);
    -- Flood control counts a route's posts of the day and finds its last one.
    CREATE INDEX outbox_route_sent ON outbox (route_id, sent_at) WHERE status = 'sent';
    CREATE INDEX outbox_held ON outbox (route_id, id) WHERE status = 'held';
    """,
    # Edits in place (bot.edits): an ``edit`` event per change of an
    # announcement already made (a title fixed, the same release on another
    # source), about an item, as often as it changes. The one-announcement-
    # per-(item, kind) index must not count them.
    """
    DROP INDEX events_item_kind;
    CREATE UNIQUE INDEX events_item_kind ON events (item_id, kind)
        WHERE item_id IS NOT NULL AND purpose = 'announce' AND kind <> 'edit';
    -- An announcement's edits, found by the event they edit.
    CREATE INDEX events_edit_of ON events ((json_extract(payload, '$.edit_of'))) WHERE kind = 'edit';
    """,
    # Issue #14 (settle, YouTube): announcements held back, and premieres
    # or streams followed until they end (bot.holds). New tables, so the
    # items and events columns stay as they were.
    """
    CREATE TABLE held_items (
        item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        content_hash TEXT NOT NULL,
        held_since_at TEXT NOT NULL,
        steady_since_at TEXT NOT NULL,
        waiting_playable INTEGER NOT NULL DEFAULT 0,
        check_failed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX held_items_source ON held_items (source_id);
    CREATE TABLE live_videos (
        item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        event_id INTEGER REFERENCES events(id) ON DELETE SET NULL,
        video_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('upcoming', 'live', 'none')),
        scheduled_start_at TEXT,
        actual_start_at TEXT,
        actual_end_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX live_videos_source ON live_videos (source_id) WHERE state != 'none';
    """,
    # -> +1: documents an item links to (issue #15: podcast:chapters JSON,
    # podcast:transcript), in tables of their own, not columns on items.
    # - item_documents: per (item, kind) the URL the feed declares now, the
    #   URL the stored content came from (fetched_url: "cached by URL", a
    #   later poll fetches again only when the two differ), failures in a row
    #   for the declared URL and when to try again, and for chapters their
    #   parsed JSON (re-applied without a fetch when an edit of the item
    #   rewrites its chapters from the description).
    # - transcript_segments: timed passages; transcript_fts indexes their
    #   text (external content, kept by triggers: a transcript is written
    #   once per URL, in one statement, so a trigger per row costs nothing
    #   worth batching).
    """
    CREATE TABLE item_documents (
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('chapters', 'transcript')),
        url TEXT NOT NULL,
        media_type TEXT,
        fetched_url TEXT,
        fetched_at TEXT,
        content TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        retry_at TEXT,
        PRIMARY KEY (item_id, kind)
    );
    CREATE TABLE transcript_segments (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        start_s INTEGER NOT NULL,
        end_s INTEGER,
        text TEXT NOT NULL
    );
    CREATE INDEX transcript_segments_item ON transcript_segments (item_id, start_s);
    CREATE VIRTUAL TABLE transcript_fts USING fts5(
        text, content = 'transcript_segments', content_rowid = 'id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER transcript_fts_insert AFTER INSERT ON transcript_segments BEGIN INSERT INTO transcript_fts (rowid, text) VALUES (new.id, new.text); END;
    CREATE TRIGGER transcript_fts_delete AFTER DELETE ON transcript_segments BEGIN INSERT INTO transcript_fts (transcript_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
    """,
    # -> n+1: search vectors (issue #15; bot/hybrid.py). Derived data, rebuilt
    # from the items (so `showbot migrate` does not copy it).
    """
    CREATE TABLE item_vectors (
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,  -- -1: the item itself; else the chapter's position
        content_hash TEXT NOT NULL,  -- items.content_hash the vector was computed from
        vector BLOB NOT NULL,  -- float32, little-endian
        PRIMARY KEY (item_id, position)
    );
    """,
    # -> n+1: one row of vectors per item, not one per chapter (issue #15's
    # ingest budget): a 540-episode feed wrote 5,940 rows, now 540, and the
    # vectors are float16 (bot/hybrid.py to_bytes), half the bytes. Derived
    # data: the old rows are dropped and the bot's start re-embeds the
    # catalogue (its backfill), ~1 s for 25,000 items.
    """
    DROP TABLE item_vectors;
    CREATE TABLE item_vectors (
        item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        content_hash TEXT NOT NULL,  -- items.content_hash the vectors were computed from
        vector BLOB NOT NULL,  -- the item's own
        chapters BLOB NOT NULL,  -- its chapters' vectors, concatenated in chapter order
        chapter_count INTEGER NOT NULL
    );
    """,
    # -> n+1: vectors are bfloat16, not float16 (bot/hybrid.py as_stored:
    # encoding them was an eighth of embedding's time). Derived data: the
    # float16 rows would read as noise, so they are dropped and the next
    # start's backfill re-embeds the catalogue.
    """
    DELETE FROM item_vectors;
    """,
    # -> n+1: an item's vector is made of the first 300 characters of its
    # show notes, not 600 (bot/hybrid.py DOC_CHARS: bench_quality
    # --sweep-doc-chars, the best nDCG@5 at the least noise on both
    # backends). Derived data: the old rows are dropped and the next start's
    # backfill re-embeds the catalogue, so no item keeps a vector of the
    # other recipe.
    """
    DELETE FROM item_vectors;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

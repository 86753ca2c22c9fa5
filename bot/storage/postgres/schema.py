"""PostgreSQL schema migrations, recorded in ``schema_migrations``.

Each entry of MIGRATIONS moves the schema from version i to i+1; the runner
(``base.migrate``) applies it and records the version in one transaction,
under ``pg_advisory_xact_lock(LOCK_NAMESPACE, LOCK_MIGRATE)``, so instances
starting together never race each other (concurrent ``CREATE ... IF NOT
EXISTS`` can still collide in the catalogs without it) and a crash
mid-migration leaves the old version intact.

The schema matches SQLite's in meaning (version 1 is SQLite's 5; each
later one names the SQLite migration it follows), in PostgreSQL's own types:
``bigserial`` ids, ``timestamptz`` (aware UTC datetimes both ways),
``boolean``, ``jsonb`` event payloads, ``text[]`` route kinds and feeds, and a
weighted ``tsvector`` per item (title A, chapter titles B, description C)
plus one per chapter, both written by the store in the same transaction as
their rows (see ``search_text``: Python tokenizes exactly as the core and
SQLite's unicode61 do; PostgreSQL stems and indexes).
"""

from __future__ import annotations

# Advisory lock keys: pg_advisory_xact_lock(LOCK_NAMESPACE, key). The
# namespace keeps them apart from other applications' locks on a shared server.
LOCK_NAMESPACE = 0x5B0_7DB  # "showbot db"
LOCK_MIGRATE = 1
LOCK_OUTBOX_INSERT = 2  # held from the first outbox insert to commit: ids commit in order
LOCK_OUTBOX_CLAIM = 3  # claims are serialized: a destination's head is judged on fresh data
LOCK_SEED = 4  # several instances starting with the same config seed one after another

# The text search configuration: English snowball stemming with no stopword
# list (SQLite's porter tokenizer drops no words either; the core drops the
# chat stopwords itself), every word-like token type through it.
TS_CONFIG = "showbot"

MIGRATIONS: list[str] = [
    # 0 -> 1: everything SQLite reached at its version 5.
    """
    CREATE TEXT SEARCH DICTIONARY showbot_stem (TEMPLATE = snowball, Language = english);
    CREATE TEXT SEARCH CONFIGURATION showbot (COPY = english);
    ALTER TEXT SEARCH CONFIGURATION showbot
        ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part WITH showbot_stem;

    CREATE TABLE sources (
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        kind text NOT NULL,
        url text,
        content text NOT NULL,
        every_s bigint NOT NULL,
        announce_on_first_poll bigint NOT NULL DEFAULT 0,
        max_age_s bigint NOT NULL,
        handle text,
        provider text,
        api_base_url text,
        paused boolean NOT NULL DEFAULT false,
        synced boolean NOT NULL DEFAULT false,
        etag text,
        last_modified text,
        body_hash text,
        last_polled_at timestamptz,
        last_success_at timestamptz,
        last_error text,
        last_error_at timestamptz,
        consecutive_failures bigint NOT NULL DEFAULT 0,
        next_poll_at timestamptz,
        cursor text,
        created_at timestamptz NOT NULL
    );

    CREATE TABLE items (
        id bigserial PRIMARY KEY,
        source_id bigint NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        identity text NOT NULL,
        guid text,
        link text,
        norm_link text,
        title_key text,
        content_hash text NOT NULL,
        kind text NOT NULL,
        title text NOT NULL,
        summary text NOT NULL DEFAULT '',
        published_at timestamptz,
        updated_at timestamptz,
        first_seen_at timestamptz NOT NULL,
        duration_s bigint,
        episode_number bigint,
        enclosure_url text,
        image_url text,
        video_id text,
        -- title A, chapter titles B, description C; written with the item.
        search tsvector NOT NULL DEFAULT ''::tsvector,
        search_len integer NOT NULL DEFAULT 0,  -- words in the vector's text: its length for ranking
        UNIQUE (source_id, identity)
    );
    CREATE INDEX items_published ON items (published_at);
    CREATE INDEX items_kind_published ON items (kind, published_at);
    CREATE INDEX items_episode_number ON items (episode_number);
    CREATE INDEX items_search ON items USING gin (search);
    -- The catalogue's size and total length for ranking (bm25's N and mean
    -- length), one row kept by every writer of items in the same
    -- transaction: search reads it instead of counting 25,000 rows.
    CREATE TABLE search_stats (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        items bigint NOT NULL,
        words bigint NOT NULL
    );
    INSERT INTO search_stats (items, words) VALUES (0, 0);

    CREATE TABLE chapters (
        item_id bigint NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        position integer NOT NULL,
        start_s bigint NOT NULL,
        title text NOT NULL,
        search tsvector NOT NULL DEFAULT ''::tsvector,
        PRIMARY KEY (item_id, position)
    );

    CREATE TABLE routes (
        id bigserial PRIMARY KEY,
        platform text NOT NULL,
        channel text NOT NULL,
        kinds text[] NOT NULL,
        mention text,
        broken_reason text,
        thread boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        UNIQUE (platform, channel)
    );

    CREATE TABLE events (
        id bigserial PRIMARY KEY,
        source_id bigint REFERENCES sources(id) ON DELETE SET NULL,
        item_id bigint REFERENCES items(id) ON DELETE CASCADE,
        kind text NOT NULL,
        title text NOT NULL,
        url text,
        payload jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL
    );
    -- One event of a kind per item, ever: the last line of defence against re-announcing.
    CREATE UNIQUE INDEX events_item_kind ON events (item_id, kind) WHERE item_id IS NOT NULL;
    CREATE INDEX events_kind_created ON events (kind, created_at);
    CREATE INDEX events_source ON events (source_id);

    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        event_id bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        route_id bigint REFERENCES routes(id) ON DELETE SET NULL,
        platform text NOT NULL,
        dest_kind text NOT NULL DEFAULT 'channel' CHECK (dest_kind IN ('channel', 'user')),
        dest_id text NOT NULL,
        mention text,
        idempotency_key text NOT NULL UNIQUE,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
        outcome_unknown boolean NOT NULL DEFAULT false,
        attempts bigint NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        first_attempt_at timestamptz,
        lease_owner text,
        lease_until timestamptz,
        last_error text,
        message_id text,
        created_at timestamptz NOT NULL,
        sent_at timestamptz,
        UNIQUE (event_id, platform, dest_kind, dest_id)
    );
    -- Each destination's head (its oldest unsent row): rows of one
    -- destination go out strictly in id order.
    CREATE INDEX outbox_unsent ON outbox (platform, dest_kind, dest_id, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_lease_owner ON outbox (lease_owner) WHERE status = 'sending';

    CREATE TABLE poll_claims (
        source_id bigint PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
        owner text NOT NULL,
        lease_until timestamptz NOT NULL
    );

    CREATE TABLE settings (
        key text PRIMARY KEY,
        value text NOT NULL
    );
    -- Which config entries were already seeded: after the first start the
    -- database is the truth (a source a moderator removed stays removed).
    CREATE TABLE config_seeds (
        key text PRIMARY KEY,
        seeded_at timestamptz NOT NULL
    );

    CREATE TABLE audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL,
        platform text NOT NULL,
        user_id text NOT NULL,
        action text NOT NULL,
        detail text NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_at ON audit (at);

    CREATE TABLE subscriptions (
        id bigserial PRIMARY KEY,
        platform text NOT NULL,
        user_id text NOT NULL,
        topic text NOT NULL,
        created_at timestamptz NOT NULL,
        UNIQUE (platform, user_id, topic)
    );

    CREATE TABLE filters (
        id bigserial PRIMARY KEY,
        source_id bigint NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        mode text NOT NULL CHECK (mode IN ('include', 'exclude')),
        pattern text NOT NULL,
        created_at timestamptz NOT NULL,
        UNIQUE (source_id, mode, pattern)
    );

    CREATE TABLE profile_snapshots (
        id bigserial PRIMARY KEY,
        source_id bigint NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        taken_at timestamptz NOT NULL,
        followers bigint,
        following bigint,
        posts bigint,
        bio text,
        pinned_id text,
        pinned_text text,
        pinned_url text,
        raw_json text NOT NULL,
        UNIQUE (source_id, taken_at)
    );
    """,
    # 1 -> 2: named leases (SQLite 6): work one instance does at a time that
    # is not a row of its own, e.g. a Discord gateway shard.
    """
    CREATE TABLE leases (
        name text PRIMARY KEY,
        owner text NOT NULL,
        lease_until timestamptz NOT NULL
    );
    """,
    # 2 -> 3: decision records (SQLite 7), for `why` and the status page:
    # the item's verdict and the event's routing as bot.verdicts JSON, and a
    # link to the posted message where the platform gives one.
    """
    ALTER TABLE items ADD COLUMN decision text;
    ALTER TABLE events ADD COLUMN routing text;
    ALTER TABLE outbox ADD COLUMN message_url text;
    """,
    # 3 -> 4: moderators shape what is posted (SQLite 8, issue #12).
    # - routes: feeds (source names, {} = every source), a message template,
    #   and flood control: pace_s (least seconds between two posts),
    #   daily_cap (posts a UTC day), digest (daily | weekly).
    # - events.purpose: 'announce' | 'test' | 'digest'. Only announcements
    #   are unique per (item, kind): `announce test here` and a digest show an
    #   item that may have been announced already.
    # - outbox: rows a digest route holds back are 'held' (out of the
    #   destination's queue -- the heads and claims read only 'pending' and
    #   'sending' -- so they block nothing), then 'digested' into one digest
    #   (digest_id), never dropped. PostgreSQL changes the CHECK in place
    #   (SQLite had to copy the table).
    # - digests: one per (route, period end), a unique key, so two instances
    #   can never both post the same period's digest (build_digest).
    """
    ALTER TABLE routes ADD COLUMN feeds text[] NOT NULL DEFAULT '{}';
    ALTER TABLE routes ADD COLUMN template text;
    ALTER TABLE routes ADD COLUMN pace_s bigint;
    ALTER TABLE routes ADD COLUMN daily_cap bigint;
    ALTER TABLE routes ADD COLUMN digest text CHECK (digest IN ('daily', 'weekly'));

    ALTER TABLE events ADD COLUMN purpose text NOT NULL DEFAULT 'announce'
        CHECK (purpose IN ('announce', 'test', 'digest'));
    DROP INDEX events_item_kind;
    CREATE UNIQUE INDEX events_item_kind ON events (item_id, kind) WHERE item_id IS NOT NULL AND purpose = 'announce';

    CREATE TABLE digests (
        id bigserial PRIMARY KEY,
        route_id bigint NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
        period_end timestamptz NOT NULL,
        event_id bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL,
        UNIQUE (route_id, period_end)
    );

    ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
    ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'held', 'digested'));
    ALTER TABLE outbox ADD COLUMN digest_id bigint REFERENCES digests(id) ON DELETE SET NULL;
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
    CREATE INDEX events_edit_of ON events (((payload->>'edit_of')::bigint)) WHERE kind = 'edit';
    """,
    # Issue #14 (settle, YouTube): announcements held back, and premieres
    # or streams followed until they end (bot.holds); as SQLite has them.
    """
    CREATE TABLE held_items (
        item_id bigint PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        source_id bigint NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        content_hash text NOT NULL,
        held_since_at timestamptz NOT NULL,
        steady_since_at timestamptz NOT NULL,
        waiting_playable boolean NOT NULL DEFAULT false,
        check_failed boolean NOT NULL DEFAULT false
    );
    CREATE INDEX held_items_source ON held_items (source_id);
    CREATE TABLE live_videos (
        item_id bigint PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        source_id bigint NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        event_id bigint REFERENCES events(id) ON DELETE SET NULL,
        video_id text NOT NULL,
        state text NOT NULL CHECK (state IN ('upcoming', 'live', 'none')),
        scheduled_start_at timestamptz,
        actual_start_at timestamptz,
        actual_end_at timestamptz,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX live_videos_source ON live_videos (source_id) WHERE state != 'none';
    """,
    # -> +1: documents an item links to (issue #15), as on SQLite: the
    # per-(item, kind) state with the URL its content came from, and
    # transcript passages with a tsvector each (GIN-indexed).
    """
    CREATE TABLE item_documents (
        item_id bigint NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('chapters', 'transcript')),
        url text NOT NULL,
        media_type text,
        fetched_url text,
        fetched_at timestamptz,
        content text,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        retry_at timestamptz,
        PRIMARY KEY (item_id, kind)
    );
    CREATE TABLE transcript_segments (
        id bigserial PRIMARY KEY,
        item_id bigint NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        start_s bigint NOT NULL,
        end_s bigint,
        text text NOT NULL,
        search tsvector NOT NULL DEFAULT ''::tsvector
    );
    CREATE INDEX transcript_segments_item ON transcript_segments (item_id, start_s);
    CREATE INDEX transcript_segments_search ON transcript_segments USING gin (search);
    """,
    # -> n+1: search vectors (issue #15; bot/hybrid.py). Derived data, rebuilt
    # from the items (so `showbot migrate` does not copy it).
    """
    CREATE TABLE item_vectors (
        item_id bigint NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        position integer NOT NULL,  -- -1: the item itself; else the chapter's position
        content_hash text NOT NULL,  -- items.content_hash the vector was computed from
        vector bytea NOT NULL,  -- float32, little-endian
        PRIMARY KEY (item_id, position)
    );
    """,
    # -> n+1: one row of vectors per item, float16 (as SQLite's migration 13:
    # 540 rows for a 540-episode feed instead of 5,940). Derived data: dropped
    # and re-embedded by the next start's backfill.
    """
    DROP TABLE item_vectors;
    CREATE TABLE item_vectors (
        item_id bigint PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        content_hash text NOT NULL,  -- items.content_hash the vectors were computed from
        vector bytea NOT NULL,  -- the item's own
        chapters bytea NOT NULL,  -- its chapters' vectors, concatenated in chapter order
        chapter_count integer NOT NULL
    );
    """,
    # -> n+1: vectors are bfloat16, not float16 (as SQLite's migration 14).
    # Derived data: dropped and re-embedded by the next start's backfill.
    """
    DELETE FROM item_vectors;
    """,
    # -> n+1: episode search within issue #15's 5 ms (bench/bench_search).
    # An episode's vector (~3 KB of show notes) barely compresses, so it was
    # stored out of line and every ts_rank of it (one per query word's
    # alternative, per matching row) fetched it from TOAST again: most of the
    # search's time. STORAGE MAIN keeps it in the row (still moved out when a
    # row outgrows its page); the UPDATE moves the vectors already stored
    # (posts' are a few hundred bytes and were never moved). Episodes get
    # their own GIN index, which an episode search reads instead of the
    # whole catalogue's postings (25,000 posts of "pg"); without fastupdate,
    # as its pending list (up to 4 MB before a flush, and episode vectors
    # fill it) would be read in full by every search.
    """
    ALTER TABLE items ALTER COLUMN search SET STORAGE MAIN;
    UPDATE items SET search = search || ''::tsvector WHERE pg_column_size(search) > 500;
    CREATE INDEX items_search_episode ON items USING gin (search) WITH (fastupdate = off)
        WHERE kind = 'episode';
    """,
    # -> n+1: the episodes' index takes writes into its pending list again,
    # as items_search does: a write now merges both lists itself, in bulk,
    # once committed (PostgresBase._flush_search_index), so searches never
    # read a long one, and a 540-episode first poll no longer pays for
    # inserting each of its ~135,000 entries into the tree one at a time
    # (stored in ~0.75 s -> ~0.45 s, the same as with no episodes' index).
    """
    ALTER INDEX items_search_episode SET (fastupdate = on);
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

# Every table of rows the store writes, parents first (the tests truncate
# them between cases; search_stats is one row, reset instead).
TABLES = (
    "sources", "items", "chapters", "routes", "events", "digests", "outbox", "filters", "subscriptions",
    "audit", "settings", "config_seeds", "profile_snapshots", "poll_claims", "leases",
    "held_items", "live_videos",
    "item_documents", "transcript_segments", "item_vectors",
)

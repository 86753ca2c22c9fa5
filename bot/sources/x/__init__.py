"""The ``x`` source kind: an X profile and its posts, as one package.

- ``page``: a profile page saved as text -> snapshot; displayed counts.
- ``snapshot``: the JSON snapshot format, and the ``snapshot`` provider.
- ``api``: ``XApiClient``, X API v2 with a bearer token.
- ``source``: ``XSource``, the kind the poller calls (touches no storage).
"""

from bot.sources.x.api import (
    DEFAULT_API_BASE,
    FIRST_PAGE,
    PAGE,
    PROFILE_PARAMS,
    TIMELINE_FIELDS,
    XAccountError,
    XApiClient,
    expand_links,
    newest_post_id,
    post_item,
)
from bot.sources.x.page import parse_count, parse_profile_text
from bot.sources.x.snapshot import (
    SNAPSHOT_FORMAT,
    fetch_snapshot,
    parse_snapshot,
    parse_snapshot_json,
    snapshot_to_json,
)
from bot.sources.x.source import XSource

__all__ = [
    "DEFAULT_API_BASE", "FIRST_PAGE", "PAGE", "PROFILE_PARAMS", "SNAPSHOT_FORMAT", "TIMELINE_FIELDS",
    "XAccountError", "XApiClient", "XSource", "expand_links", "fetch_snapshot", "newest_post_id",
    "parse_count", "parse_profile_text", "parse_snapshot", "parse_snapshot_json", "post_item",
    "snapshot_to_json",
]

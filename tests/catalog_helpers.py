"""The catalogue fixture (tests/fixtures/catalog_episodes.json) loaded into a
real storage (either backend) the way a first poll would: real titles and descriptions from
/work/shared/seeds plus episodes written in the creator's style."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.detect import decide
from bot.models import Caller, Chapter, ContentKind, Item, Platform, SourceSpec
from bot.storage import Storage
from tests.spine import write_decision

CATALOG = Path(__file__).parent / "fixtures" / "catalog_episodes.json"
NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)

MEMBER = Caller(platform=Platform.DISCORD, user_id="1001", channel="555", display_name="member")
MODERATOR = Caller(platform=Platform.DISCORD, user_id="42", channel="555", is_moderator=True,
                   display_name="mod")


def catalog_sources() -> list[tuple[SourceSpec, list[Item]]]:
    raw = json.loads(CATALOG.read_text(encoding="utf-8"))
    out = []
    for source in raw["sources"]:
        spec = SourceSpec(name=source["name"], kind="rss", url=source["url"],
                          content=ContentKind(source["content"]))
        items = [
            Item(
                title=i["title"], link=i.get("link"), guid=i.get("guid"), summary=i["summary"],
                published_at=datetime.fromisoformat(i["published_at"]),
                duration_s=i.get("duration_s"), episode_number=i.get("episode_number"),
                enclosure_url=i.get("enclosure_url"), image_url=i.get("image_url"),
                video_id=i.get("video_id"),
                chapters=tuple(Chapter(s, t) for s, t in i.get("chapters", [])),
            )
            for i in source["items"]
        ]
        out.append((spec, items))
    return out


async def load_catalog(store: Storage, now: datetime = NOW) -> int:
    """Store every fixture item as a silent first poll; returns the count."""
    total = 0
    for spec, items in catalog_sources():
        source = await store.add_source(spec, now)
        decision = decide(spec=spec, synced=False, known=[], fetched=items, now=now)
        write = await write_decision(store, source, decision, now=now,
                                       next_poll_at=now + timedelta(seconds=spec.every_s),
                                       etag=None, last_modified=None, body_hash=None)
        total += len(write.new_items)
    return total

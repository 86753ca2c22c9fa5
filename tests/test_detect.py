"""The pure decider: every rule of "What counts as new", no network, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.detect import (
    KnownItem,
    content_hash,
    decide,
    item_identity,
    make_book_matcher,
    normalize_link,
    plan_deliveries,
    title_key,
)
from bot.models import ContentKind, EventKind, Item, Platform, Route, SourceSpec

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)
SPEC = SourceSpec(name="podcast", kind="rss", url="https://example.com/rss", content=ContentKind.EPISODE)


def episode(n: int, *, days_ago: float = 0, guid: str | None = None, **kw: object) -> Item:
    return Item(
        title=kw.pop("title", f"Episode {n}"),  # type: ignore[arg-type]
        link=kw.pop("link", f"https://example.com/episodes/{n}"),  # type: ignore[arg-type]
        guid=guid if guid is not None else f"guid-{n}",
        summary=kw.pop("summary", f"About topic {n}"),  # type: ignore[arg-type]
        published_at=NOW - timedelta(days=days_ago),
        **kw,  # type: ignore[arg-type]
    )


def known_from(items: list[Item], start_id: int = 1) -> list[KnownItem]:
    out = []
    for i, item in enumerate(items):
        d = decide(spec=SPEC, synced=False, known=[], fetched=[item], now=NOW)
        n = d.new_items[0]
        out.append(KnownItem(start_id + i, n.identity, n.norm_link, n.title_key, n.content_hash))
    return out


def test_identity_prefers_guid_then_link_then_hash() -> None:
    assert item_identity(Item(title="t", guid=" abc ", link="https://x.com/a")) == "guid:abc"
    assert item_identity(Item(title="t", link="https://X.com/a/?utm_source=tw")) == "link:x.com/a"
    hashed = item_identity(Item(title="Hello", published_at=NOW))
    assert hashed.startswith("hash:") and hashed == item_identity(Item(title="  hello ", published_at=NOW))


def test_normalize_link_drops_what_does_not_identify_a_page() -> None:
    assert normalize_link("http://www.Example.com:80/a/b/?utm_medium=x&b=2&a=1#frag") == "example.com/a/b?a=1&b=2"
    assert normalize_link("https://example.com/a") == normalize_link("http://example.com/a/")
    assert normalize_link("") is None and normalize_link(None) is None


def test_first_poll_stores_all_and_announces_nothing() -> None:
    items = [episode(n, days_ago=n) for n in range(500)]
    d = decide(spec=SPEC, synced=False, known=[], fetched=items, now=NOW)
    assert len(d.new_items) == 500
    assert d.events == ()


def test_first_poll_can_announce_the_newest_n() -> None:
    items = [episode(n, days_ago=n + 30) for n in range(20)]  # all older than max_age
    d = decide(spec=replace(SPEC, announce_on_first_poll=2), synced=False, known=[], fetched=items, now=NOW)
    assert [e.title for e in d.events] == ["Episode 1", "Episode 0"]  # oldest first
    assert {e.kind for e in d.events} == {EventKind.EPISODE}


def test_a_new_item_between_polls_is_one_event() -> None:
    old = [episode(n, days_ago=n + 1) for n in range(5)]
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=[episode(99)] + old, now=NOW)
    assert [n.item.title for n in d.new_items] == ["Episode 99"]
    assert [(e.kind, e.title) for e in d.events] == [(EventKind.EPISODE, "Episode 99")]
    assert d.updates == ()


def test_rewritten_guids_announce_nothing() -> None:
    old = [episode(n, days_ago=n) for n in range(10)]
    rewritten = [replace(i, guid="new-" + (i.guid or "")) for i in old]
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=rewritten, now=NOW)
    assert d.new_items == () and d.events == ()
    # The stored identity follows the feed so the next poll matches by GUID again.
    assert {u.identity for u in d.updates} == {f"guid:new-guid-{n}" for n in range(10)}


def test_rewritten_guids_without_links_match_on_title_and_day() -> None:
    old = [episode(n, days_ago=n, link=None) for n in range(5)]
    rewritten = [replace(i, guid="other-" + (i.guid or "")) for i in old]
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=rewritten, now=NOW)
    assert d.new_items == () and d.events == ()


def test_a_shared_link_identifies_nothing() -> None:
    # Many podcasts set every <link> to the show page: a new episode must not
    # be mistaken for an old one because of it.
    old = [episode(n, days_ago=n + 1, link="https://show.example.com/") for n in range(3)]
    new = episode(7, link="https://show.example.com/")
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=[new] + old, now=NOW)
    assert [n.item.title for n in d.new_items] == ["Episode 7"]
    assert len(d.events) == 1


def test_redated_items_announce_nothing() -> None:
    old = [episode(n, days_ago=n + 3) for n in range(5)]
    redated = [replace(i, published_at=NOW) for i in old]
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=redated, now=NOW)
    assert d.new_items == () and d.events == () and d.updates == ()


def test_old_item_appearing_is_stored_not_announced() -> None:
    old = [episode(n, days_ago=1) for n in range(3)]
    late = episode(50, days_ago=30)
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=[late] + old, now=NOW)
    assert [n.item.title for n in d.new_items] == ["Episode 50"]
    assert d.events == ()


def test_title_edit_updates_without_announcing() -> None:
    old = [episode(1, days_ago=1)]
    edited = replace(old[0], title="Episode 1 (fixed typo)", summary="Better words")
    d = decide(spec=SPEC, synced=True, known=known_from(old), fetched=[edited], now=NOW)
    assert d.new_items == () and d.events == ()
    assert len(d.updates) == 1 and d.updates[0].item.title == "Episode 1 (fixed typo)"


def test_an_entry_listed_twice_is_one_item() -> None:
    d = decide(spec=SPEC, synced=True, known=[], fetched=[episode(1), episode(1)], now=NOW)
    assert len(d.new_items) == 1 and len(d.events) == 1


def test_undated_new_item_is_announced() -> None:
    item = Item(title="Undated", guid="u1")
    d = decide(spec=SPEC, synced=True, known=[], fetched=[item], now=NOW)
    assert [e.title for e in d.events] == ["Undated"]


def test_book_news_is_its_own_event_and_routes_once_per_channel() -> None:
    is_book = make_book_matcher(["Root Cause"], ["https://amzn.to/4cfQjJj"])
    book_ep = episode(1, title="My new book - Root cause, Stories from two decades of backend bugs")
    plain = episode(2, title="Page Tables")
    linked = episode(3, title="Something", summary="Buy it: https://amzn.to/4cfQjJj")
    d = decide(spec=SPEC, synced=True, known=[], fetched=[book_ep, plain, linked], now=NOW,
               is_book_news=is_book)
    kinds = [(e.title, e.kind) for e in d.events]
    assert (book_ep.title, EventKind.BOOK) in kinds and (book_ep.title, EventKind.EPISODE) in kinds
    assert ("Page Tables", EventKind.BOOK) not in kinds
    assert ("Something", EventKind.BOOK) in kinds
    both = Route(1, Platform.DISCORD, "c1", frozenset({EventKind.EPISODE, EventKind.BOOK}))
    books = Route(2, Platform.SLACK, "c2", frozenset({EventKind.BOOK}))
    refs = [(e.new_index, e.kind) for e in d.events]
    plan = plan_deliveries(refs, [both, books])
    per_route = {r.id: [d.events[i].title for i, rr in plan if rr.id == r.id] for r in (both, books)}
    assert sorted(per_route[1]) == sorted([book_ep.title, "Page Tables", "Something"])  # once each
    assert sorted(per_route[2]) == sorted([book_ep.title, "Something"])


def test_book_matcher_matches_whole_words_only() -> None:
    is_book = make_book_matcher(["Root Cause"])
    assert is_book(Item(title="root cause analysis of the outage"))
    assert not is_book(Item(title="Rootcause"))


def test_the_book_plug_at_the_end_of_every_description_is_not_book_news() -> None:
    is_book = make_book_matcher(["Root Cause"], ["https://amzn.to/4cKfZhe"])
    plug = ("An aws engineer discovered a 50% regression in postgres throughput while testing the new "
            "Linux 7.0 kernel. The cause turns out to be massive TLB and page faults. Intermediate and "
            "Advanced Backend Engineering Course Bundle https://courses.husseinnasser.com/bundle My Book, "
            "Root Cause: Stories and Lessons from Two Decades of Backend Engineering Bugs https://amzn.to/4cKfZhe")
    assert not is_book(Item(title="Postgres is half as fast in Linux 7.0", summary=plug))
    about = "I wrote a new book that has been in the works for years. It is called Root Cause , and it is for"
    assert is_book(Item(title="My new book", summary=about))


def test_content_hash_ignores_dates_but_sees_edits() -> None:
    a = episode(1)
    assert content_hash(a) == content_hash(replace(a, published_at=NOW - timedelta(days=9)))
    assert content_hash(a) != content_hash(replace(a, summary="changed"))
    assert title_key(Item(title="x")) is None


items_strategy = st.lists(
    st.builds(
        Item,
        title=st.text(max_size=30),
        link=st.one_of(st.none(), st.sampled_from(["https://a.com/1", "https://a.com/2", "http://a.com/1/"])),
        guid=st.one_of(st.none(), st.text(max_size=5)),
        published_at=st.one_of(st.none(), st.just(NOW), st.just(NOW - timedelta(days=30))),
    ),
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(items_strategy, items_strategy)
def test_polling_the_same_feed_twice_never_announces_again(first: list[Item], second: list[Item]) -> None:
    d1 = decide(spec=SPEC, synced=True, known=[], fetched=first, now=NOW)
    known = [KnownItem(i + 1, n.identity, n.norm_link, n.title_key, n.content_hash)
             for i, n in enumerate(d1.new_items)]
    again = decide(spec=SPEC, synced=True, known=known, fetched=first, now=NOW)
    assert again.new_items == () and again.events == ()
    # Whatever arrives next, events only ever point at new items.
    d2 = decide(spec=SPEC, synced=True, known=known, fetched=second, now=NOW)
    assert all(0 <= e.new_index < len(d2.new_items) for e in d2.events)

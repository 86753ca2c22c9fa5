"""Every phrasing of the issue parses to the intended command."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from bot.commands.grammar import (
    AnnounceCap, AnnounceDigest, AnnouncePace, AnnounceTest, FeedBackfill, Preview, TemplateList,
    TemplateReset, TemplateSet, TemplateUse,
    AnnounceHere, AnnounceOff, EpisodeNumber, FeedAction, FeedAdd, Feeds, FilterAdd, FilterClear,
    FilterList, Help, Latest, RandomPick, Search, Stats, Status, Subscribe, Subscriptions, Unknown,
    Unsubscribe, Usage, parse,
)
from bot.models import ContentKind, DigestPeriod

EPISODE, VIDEO, ARTICLE, POST = ContentKind.EPISODE, ContentKind.VIDEO, ContentKind.ARTICLE, ContentKind.POST

PHRASINGS = [
    ("latest episode", Latest(EPISODE, single=True)),
    ("latest", Latest()),
    ("what's new", Latest()),
    ("What’s new?", Latest()),
    ("whats new", Latest()),
    ("latest video", Latest(VIDEO, single=True)),
    ("latest article", Latest(ARTICLE, single=True)),
    ("latest post", Latest(POST, single=True)),
    ("latest episodes", Latest(EPISODE)),
    ("latest episodes page 3", Latest(EPISODE, page=3)),
    ("latest page 2", Latest(page=2)),
    ("episodes on postgres", Search("postgres", EPISODE, phrase="episodes on")),
    ("episodes on postgres page 2", Search("postgres", EPISODE, 2, phrase="episodes on")),
    ("search tls", Search("tls")),
    ("search tls page 2", Search("tls", page=2)),
    ("search for http/2", Search("http/2")),
    ("videos about kafka", Search("kafka", VIDEO, phrase="videos on")),
    ("articles about postgres locks", Search("postgres locks", ARTICLE, phrase="articles on")),
    ("posts about mysql", Search("mysql", POST, phrase="posts on")),
    ("anything on page faults?", Search("page faults")),
    ("Anything about TLS??", Search("TLS")),
    ("episode 141", EpisodeNumber(141)),
    ("Episode #141", EpisodeNumber(141)),
    ("ep 141", EpisodeNumber(141)),
    ("random episode", RandomPick(EPISODE)),
    ("random", RandomPick(EPISODE)),
    ("random video", RandomPick(VIDEO)),
    ("random episode on databases", RandomPick(EPISODE, "databases")),
    ("help", Help()),
    ("help search", Help("search")),
    ("", Help()),
    ("   ", Help()),
    ("stats", Stats()),
    ("subscribe kafka", Subscribe("kafka")),
    ("subscribe to page faults", Subscribe("page faults")),
    ("unsubscribe kafka", Unsubscribe("kafka")),
    ("subscriptions", Subscriptions()),
    ("my subscriptions", Subscriptions()),
    ("feeds", Feeds()),
    ("feed add https://example.org/rss", FeedAdd("https://example.org/rss")),
    ("feed add https://example.org/rss as video name talks every 1h",
     FeedAdd("https://example.org/rss", VIDEO, "talks", "1h")),
    ("feed remove podcast", FeedAction("remove", "podcast")),
    ("feed pause podcast", FeedAction("pause", "podcast")),
    ("feed resume podcast", FeedAction("resume", "podcast")),
    ("feed test podcast", FeedAction("test", "podcast")),
    ("announce episode,video here", AnnounceHere(("episode", "video"))),
    ("announce episode video book here mention <@&987>", AnnounceHere(("episode", "video", "book"), "<@&987>")),
    ("announce off here", AnnounceOff()),
    ("filter podcast exclude sponsored giveaway", FilterAdd("podcast", "exclude", "sponsored giveaway")),
    ("filter podcast include /Postgres(ql)? \\d+/", FilterAdd("podcast", "include", "/Postgres(ql)? \\d+/")),
    ("filter podcast clear", FilterClear("podcast")),
    ("filter podcast", FilterList("podcast")),
    ("status", Status()),
]

# What moderators shape (issue #12), in their own table so merges stay easy.
SHAPING = [
    ("announce only episode here", AnnounceHere(("episode",), only=True)),
    ("announce off episode, video here", AnnounceOff(("episode", "video"))),
    ("announce episode from podcast here", AnnounceHere(("episode",), feed="podcast")),
    ("announce only video from YouTube here thread", AnnounceHere(("video",), None, True, True, "YouTube")),
    ("announce episode here mention none no thread", AnnounceHere(("episode",), "none", False)),
    ("announce digest daily here", AnnounceDigest(DigestPeriod.DAILY)),
    ("announce digest weekly here", AnnounceDigest(DigestPeriod.WEEKLY)),
    ("announce digest off here", AnnounceDigest(None)),
    ("announce pace 30s here", AnnouncePace("30s")),
    ("announce pace off here", AnnouncePace(None)),
    ("announce cap 10 here", AnnounceCap(10)),
    ("announce cap off here", AnnounceCap(None)),
    ("announce test here", AnnounceTest()),
    ("template list", TemplateList()),
    ("templates", TemplateList()),
    ("template compact here", TemplateUse("compact")),
    ("template set here {title}  {url}", TemplateSet("{title}  {url}")),  # spacing kept as typed
    ("template set here {title}\\n{url}", TemplateSet("{title}\n{url}")),
    ("template reset here", TemplateReset()),
    ("preview podcast", Preview("podcast")),
    ("preview podcast here", Preview("podcast", here=True)),
    ("feed backfill podcast 5", FeedBackfill("podcast", 5)),
]


@pytest.mark.parametrize("text,expected", SHAPING, ids=[p[0] for p in SHAPING])
def test_shaping_commands_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["announce digest hourly here", "announce cap lots here", "template set here",
                                  "template fancy", "preview", "preview a b", "feed backfill podcast",
                                  "feed backfill podcast x", "announce episode from here",
                                  "announce episode here sideways"])
def test_misused_shaping_commands_get_their_usage(text: str) -> None:
    assert isinstance(parse(text), Usage), parse(text)


@pytest.mark.parametrize("text,expected", PHRASINGS, ids=[p[0] or "<empty>" for p in PHRASINGS])
def test_phrasing_parses_to_the_intended_command(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["lates", "serch kafka", "subscirbe kafka", "/latest", "@showbot latest", "hi",
                                  "thanks", "???!", "one two three four five six seven eight nine"])
def test_unknown_input_is_unknown_not_an_error(text: str) -> None:
    # Mention prefixes and slash-command names are the adapter's to strip.
    assert isinstance(parse(text), Unknown)


@pytest.mark.parametrize("text", ["feed", "feed add", "feed frobnicate x", "feed add https://x.org as podcastz",
                                  "announce here", "announce episode", "filter a b c"])
def test_misused_moderator_commands_get_their_usage(text: str) -> None:
    assert isinstance(parse(text), Usage)


def test_what_the_bot_emits_as_more_parses_back() -> None:
    assert parse("search http 2 page 2") == Search("http 2", page=2)
    assert parse("videos on kafka page 4") == Search("kafka", VIDEO, 4, phrase="videos on")
    assert parse("latest episodes page 2") == Latest(EPISODE, page=2)


def test_huge_numbers_do_not_overflow() -> None:
    assert isinstance(parse("episode " + "9" * 5000), Unknown)
    assert parse("search x page 99999") == Search("x page 99999")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_parses(text: str) -> None:
    parse(text)


# -- natural questions (issue #15) ------------------------------------------------------

NATURAL = [
    ("postgres", Search("postgres", bare=True)),
    ("kafka consumer groups", Search("kafka consumer groups", bare=True)),
    ("how does postgres handle concurrent updates?", Search("how does postgres handle concurrent updates", bare=True)),
    ("what's the latest episode?", Latest(EPISODE, single=True)),
    ("What is the newest video", Latest(VIDEO, single=True)),
    ("what’s the latest", Latest()),
    ("whats the most recent article?", Latest(ARTICLE, single=True)),
    ("any episodes about kafka?", Search("kafka", EPISODE, phrase="episodes on")),
    ("are there any videos on tls", Search("tls", VIDEO, phrase="videos on")),
    ("is there a video on http/2?", Search("http/2", VIDEO, phrase="videos on")),
    ("is there an episode about io_uring", Search("io_uring", EPISODE, phrase="episodes on")),
    ("do you have any articles on postgres locks", Search("postgres locks", ARTICLE, phrase="articles on")),
    ("has he talked about io_uring?", Search("io_uring")),
    ("did he ever cover postgres vacuum", Search("postgres vacuum")),
    ("has hussein discussed sharding", Search("sharding")),
    ("has he done a video on kafka", Search("kafka", VIDEO)),
    ("search kafka newest", Search("kafka", newest=True)),
    ("episodes on postgres newest page 2", Search("postgres", EPISODE, 2, phrase="episodes on", newest=True)),
    ("search tls by date", Search("tls", newest=True)),
    ("search newest", Search("newest")),  # the modifier needs a topic before it
]


@pytest.mark.parametrize("text,expected", NATURAL, ids=[p[0] for p in NATURAL])
def test_natural_questions_map_to_the_commands(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["lates", "serch kafka", "subscirbe kafka", "unsubscribe", "statss", "bok",
                                  "episdoe 12", "hepl"])
def test_a_misspelled_command_is_not_taken_for_a_topic(text: str) -> None:
    # "did you mean" must still get these (they are Unknown, not a bare search)
    from bot.commands.grammar import closest_command

    parsed = parse(text)
    assert not (isinstance(parsed, Search) and parsed.bare), parsed
    if isinstance(parsed, Unknown):
        assert closest_command(text) is not None


_WORDS = st.text(alphabet=st.characters(categories=("Ll", "Lu", "Nd")), min_size=1, max_size=12)
_TOPIC = st.lists(_WORDS, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_TOPIC, st.sampled_from(["episodes", "videos", "articles", "posts"]),
       st.sampled_from(["any {k} about {t}?", "are there any {k} on {t}", "{k} on {t}", "{k} about {t}"]))
def test_any_kind_question_keeps_the_topic_verbatim(topic: str, kind: str, shape: str) -> None:
    parsed = parse(shape.format(k=kind, t=topic))
    assert isinstance(parsed, Search) and parsed.kind is not None
    # the topic comes back as typed, unless it ended in a modifier or a page
    assert topic.startswith(parsed.topic) or parsed.page > 1 or parsed.newest


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_a_bare_parse_is_a_short_topic_or_unknown(text: str) -> None:
    parsed = parse(text)
    if isinstance(parsed, Search) and parsed.bare:
        assert len(parsed.topic.split(" ")) <= 8 and any(c.isalnum() for c in parsed.topic)
        assert parsed.topic[0] not in "@/"

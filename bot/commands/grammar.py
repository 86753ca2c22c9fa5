"""Text -> Command. Pure: no I/O, never raises.

The grammar is the same on every adapter; adapters strip their own mention
prefix or slash-command name before calling the core. Member phrasings are
matched case-insensitively on whitespace-collapsed text with trailing
punctuation removed ("anything on page faults?"); moderator commands keep
their arguments verbatim (URLs, names, /regex/).

Every pattern is anchored and unambiguous (no nested or lazy quantifiers
over free text), and input is capped at MAX_INPUT characters, so parsing is
linear in the input.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from bot.models import ContentKind, DigestPeriod

MAX_INPUT = 2000
MAX_PAGE = 1000


# -- commands ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Unknown:
    text: str


@dataclass(frozen=True, slots=True)
class Latest:
    kind: ContentKind | None = None
    single: bool = False  # "latest episode": the one newest; "latest episodes": a page
    page: int = 1


@dataclass(frozen=True, slots=True)
class Search:
    topic: str
    kind: ContentKind | None = None
    page: int = 1
    phrase: str = "search"  # how the member asked, reused for "more" ("episodes on")
    newest: bool = False  # `search X newest`: by date, newest first, instead of by relevance
    bare: bool = False  # no command word: a topic typed alone ("postgres"); no hits -> the short help


@dataclass(frozen=True, slots=True)
class EpisodeNumber:
    number: int


@dataclass(frozen=True, slots=True)
class RandomPick:
    kind: ContentKind | None = ContentKind.EPISODE
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    pass


@dataclass(frozen=True, slots=True)
class Book:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    topic: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    topic: str


@dataclass(frozen=True, slots=True)
class Subscriptions:
    pass


# Moderator commands -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Feeds:
    pass


@dataclass(frozen=True, slots=True)
class FeedAdd:
    url: str
    kind: ContentKind | None = None  # None: infer from the feed
    name: str | None = None          # None: a slug of the feed title
    every: str | None = None         # None: the default interval


@dataclass(frozen=True, slots=True)
class FeedAction:
    action: str  # remove | pause | resume | test
    name: str


@dataclass(frozen=True, slots=True)
class AnnounceHere:
    kinds: tuple[str, ...]
    mention: str | None = None  # None: unchanged; "none": no mention any more
    thread: bool | None = None  # a discussion thread under each announcement (Discord); None: unchanged
    only: bool = False  # `announce only ...`: these kinds replace the channel's, instead of adding
    feed: str | None = None  # `... from <feed> here`: route by feed as well ("all": every feed)


@dataclass(frozen=True, slots=True)
class AnnounceOff:
    kinds: tuple[str, ...] = ()  # none: stop announcing here at all


@dataclass(frozen=True, slots=True)
class FilterAdd:
    feed: str
    mode: str  # include | exclude
    pattern: str


@dataclass(frozen=True, slots=True)
class FilterClear:
    feed: str


@dataclass(frozen=True, slots=True)
class FilterList:
    feed: str


@dataclass(frozen=True, slots=True)
class Status:
    pass


# -- why (operators, issue #13): kept in its own block --------------------------

@dataclass(frozen=True, slots=True)
class Why:
    """`why <url or title>`: an item's path through the pipeline (moderators)."""

    query: str


# -- what moderators shape: flood control, tests, templates, previews, backfill ---

@dataclass(frozen=True, slots=True)
class AnnounceDigest:
    period: DigestPeriod | None  # None: off


@dataclass(frozen=True, slots=True)
class AnnouncePace:
    every: str | None  # "30s"; None: off


@dataclass(frozen=True, slots=True)
class AnnounceCap:
    per_day: int | None  # None: off


@dataclass(frozen=True, slots=True)
class AnnounceTest:
    pass


@dataclass(frozen=True, slots=True)
class TemplateList:
    pass


@dataclass(frozen=True, slots=True)
class TemplateUse:
    name: str  # a gallery name; "card" is the default


@dataclass(frozen=True, slots=True)
class TemplateSet:
    text: str  # verbatim, with "\n" written as a newline


@dataclass(frozen=True, slots=True)
class TemplateReset:
    pass


@dataclass(frozen=True, slots=True)
class Preview:
    feed: str
    here: bool = False  # this channel's template and mention, else the default card


@dataclass(frozen=True, slots=True)
class FeedBackfill:
    feed: str
    count: int


@dataclass(frozen=True, slots=True)
class Usage:
    """A known command used the wrong way: answer with its usage line."""

    command: str
    problem: str


Command = (
    Help | Unknown | Latest | Search | EpisodeNumber | RandomPick | Stats | Book | Subscribe
    | Unsubscribe | Subscriptions | Feeds | FeedAdd | FeedAction | AnnounceHere | AnnounceOff
    | FilterAdd | FilterClear | FilterList | Status | Usage | Why
    | AnnounceDigest | AnnouncePace | AnnounceCap | AnnounceTest | TemplateList | TemplateUse
    | TemplateSet | TemplateReset | Preview | FeedBackfill
)

MODERATOR_COMMANDS = (Feeds, FeedAdd, FeedAction, AnnounceHere, AnnounceOff, FilterAdd,
                      FilterClear, FilterList, Status, Why,
                      AnnounceDigest, AnnouncePace, AnnounceCap, AnnounceTest, TemplateList, TemplateUse,
                      TemplateSet, TemplateReset, Preview, FeedBackfill)


# -- vocabulary ----------------------------------------------------------------

_KIND_WORDS = {
    "episode": ContentKind.EPISODE, "episodes": ContentKind.EPISODE, "ep": ContentKind.EPISODE,
    "podcast": ContentKind.EPISODE, "podcasts": ContentKind.EPISODE,
    "video": ContentKind.VIDEO, "videos": ContentKind.VIDEO,
    "article": ContentKind.ARTICLE, "articles": ContentKind.ARTICLE,
    "post": ContentKind.POST, "posts": ContentKind.POST,
    "tweet": ContentKind.POST, "tweets": ContentKind.POST,
}
_KIND = r"(episodes?|ep|podcasts?|videos?|articles?|posts?|tweets?)"
_PAGE = r"(?:\s+page\s+(\d{1,4}))?"

# Trailing "?", "!", "." and spaces are chat noise, not part of a topic.
_TRAILING = re.compile(r"[\s?!.,;:…]+$")
_SPACES = re.compile(r"\s+")


def _m(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"$", re.IGNORECASE)


_HELP = _m(r"(?:help|commands|\?+|what can you do)(?:\s+(.+))?")
_LATEST = _m(r"(?:show\s+me\s+)?(?:the\s+)?(?:latest|newest|recent|last|new)(?:\s+" + _KIND + r")?" + _PAGE)
_WHATS_NEW = _m(r"(?:what'?s|what\s+is|whats|anything)\s+new(?:\s+" + _KIND + r")?")
_EPISODE_N = _m(r"(?:episode|ep|#)\s*(?:no\.?\s*|number\s+)?#?(\d{1,9})")
_RANDOM = _m(r"(?:a\s+)?random(?:\s+" + _KIND + r")?(?:\s+(?:on|about)\s+(\S.*))?")
_SEARCH = _m(r"(?:search|find|lookup|look\s+up)(?:\s+for)?\s+(\S.*?)" + _PAGE)
_KIND_ON = _m(_KIND + r"\s+(?:on|about|for|with|covering)\s+(\S.*?)" + _PAGE)
_ANYTHING_ON = _m(r"(?:anything|something|stuff|everything)\s+(?:on|about)\s+(\S.*?)" + _PAGE)
# Natural questions (issue #15). Each is anchored and its free text is one
# trailing group, so matching stays linear.
_LATEST_QUESTION = _m(r"(?:what'?s|what\s+is|whats|which\s+is|show\s+me|give\s+me|tell\s+me)\s+(?:the\s+|his\s+)?"
                      r"(?:latest|newest|most\s+recent|last|new)(?:\s+" + _KIND + r")?(?:\s+out)?")
_ANY_KIND_ON = _m(r"(?:(?:are\s+there|is\s+there|do\s+you\s+have|does\s+he\s+have|got)\s+)?(?:any|an?|some)\s+"
                  + _KIND + r"\s+(?:on|about|for|covering|that\s+covers?|talking\s+about|discussing)\s+(\S.*?)" + _PAGE)
_TALKED_ABOUT = _m(r"(?:has|did|does|have)\s+(?:he|she|they|hussein|you)\s+(?:ever\s+)?"
                   r"(?:talk(?:ed)?|spoken?|speak|cover(?:ed)?|discuss(?:ed)?|mention(?:ed)?|(?:done|do|made|make)\s+(?:an?\s+)?"
                   + _KIND + r")(?:\s+(?:about|on|of))?\s+(\S.*?)" + _PAGE)
# `search X newest`: the modifier is the topic's last word(s).
_NEWEST = re.compile(r"\s+(?:newest(?:\s+first)?|latest(?:\s+first)?|by\s+date|most\s+recent)$", re.IGNORECASE)
# A bare topic ("postgres", "kafka consumer groups") is a search when it is
# short and not a misspelled command (those get "did you mean").
MAX_BARE_WORDS = 8
_SUBSCRIBE = _m(r"(?:subscribe|follow)(?:\s+to)?\s+(\S.*)")
_UNSUBSCRIBE = _m(r"(?:unsubscribe|unfollow)(?:\s+from)?\s+(\S.*)")
_SUBSCRIPTIONS = _m(r"(?:my\s+)?(?:subscriptions|subs|topics)")
_STATS = _m(r"(?:stats|statistics|numbers)")
_BOOK = _m(r"(?:the\s+)?book")

# The words a member can start a command with, for "did you mean".
COMMAND_WORDS = (
    "latest", "search", "episodes on", "videos about", "episode", "random", "stats", "book",
    "subscribe", "unsubscribe", "subscriptions", "help", "what's new", "anything on",
    "feeds", "feed", "announce", "filter", "status", "why", "template", "preview",
)


# -- parsing -------------------------------------------------------------------

def parse(text: str) -> Command:
    """Any text -> a Command. Unknown phrasings become ``Unknown``."""
    raw = _SPACES.sub(" ", text[:MAX_INPUT]).strip()
    if not raw:
        return Help()
    words = raw.split(" ")
    head = words[0].casefold()
    if head == "why":  # verbatim: a URL or a title, as the moderator wrote it
        return _parse_why(words[1:])
    if head in ("feeds", "feed", "announce", "filter", "filters", "status"):
        command = _parse_moderator(head, words[1:])
        if command is not None:
            return command
    if head in ("template", "templates", "preview"):
        # The template's own text is kept as typed (line breaks too).
        return _parse_shaping(head, words[1:], text[:MAX_INPUT])
    # Phones type curly apostrophes ("what’s new").
    member_text = raw.replace("\u2019", "'").replace("\u2018", "'")
    return _parse_member(_TRAILING.sub("", member_text) or member_text)


def _page(value: str | None) -> int:
    return min(int(value), MAX_PAGE) if value else 1


def _kind(word: str | None) -> ContentKind | None:
    return _KIND_WORDS.get(word.casefold()) if word else None


def _parse_member(text: str) -> Command:
    if m := _HELP.match(text):
        return Help(m.group(1).strip().casefold() if m.group(1) else None)
    if m := _LATEST.match(text):
        word = m.group(1)
        single = word is not None and not word.casefold().endswith("s")
        return Latest(_kind(word), single=single, page=_page(m.group(2)))
    if m := _WHATS_NEW.match(text):
        return Latest(_kind(m.group(1)))
    if m := _EPISODE_N.match(text):
        return EpisodeNumber(int(m.group(1)))
    if m := _RANDOM.match(text):
        kind = _kind(m.group(1)) or ContentKind.EPISODE
        topic = m.group(2).strip() if m.group(2) else None
        return RandomPick(kind, topic)
    if m := _LATEST_QUESTION.match(text):
        word = m.group(1)
        return Latest(_kind(word), single=word is not None and not word.casefold().endswith("s"))
    if m := _SEARCH.match(text):
        return _search(m.group(1), None, m.group(2))
    if m := _KIND_ON.match(text):
        return _kind_search(m.group(1), m.group(2), m.group(3))
    if m := _ANY_KIND_ON.match(text):
        return _kind_search(m.group(1), m.group(2), m.group(3))
    if m := _ANYTHING_ON.match(text):
        return _search(m.group(1), None, m.group(2))
    if m := _TALKED_ABOUT.match(text):
        return _search(m.group(2), _kind(m.group(1)) if m.group(1) else None, m.group(3))
    if _SUBSCRIPTIONS.match(text):
        return Subscriptions()
    if m := _UNSUBSCRIBE.match(text):
        return Unsubscribe(m.group(1).strip())
    if m := _SUBSCRIBE.match(text):
        return Subscribe(m.group(1).strip())
    if _STATS.match(text):
        return Stats()
    if _BOOK.match(text):
        return Book()
    return _bare(text)


def _search(topic: str, kind: ContentKind | None, page: str | None, phrase: str = "search") -> Search:
    topic = topic.strip()
    newest = _NEWEST.search(topic)
    if newest is not None and newest.start() > 0:
        return Search(topic[:newest.start()].strip(), kind, _page(page), phrase=phrase, newest=True)
    return Search(topic, kind, _page(page), phrase=phrase)


def _kind_search(word: str, topic: str, page: str | None) -> Search:
    word = word.casefold()
    phrase = f"{word if word.endswith('s') else word + 's'} on"
    if word in ("ep", "podcast", "podcasts"):
        phrase = "episodes on"
    return _search(topic, _kind(word), page, phrase)


def _bare(text: str) -> Command:
    """A bare topic is a search, unless it reads like a command mistyped
    (the first word or two close to one: "lates", "serch kafka", "subscirbe
    x") or is too long to be a topic."""
    if closest_command(text) is not None or len(text.split(" ")) > MAX_BARE_WORDS:
        return Unknown(text)
    if not any(ch.isalnum() for ch in text) or text.casefold() in _CHATTER or text[0] in "@/!<#":
        return Unknown(text)  # (a mention or a slash-command name is the adapter's to strip)
    found = _search(text, None, None)
    return Search(found.topic, found.kind, found.page, found.phrase, found.newest, bare=True)


# Small talk is not a topic: the member gets the "try latest, search" help.
_CHATTER = frozenset((*"hi hey hello yo sup thanks thx ty ok okay cool nice lol yes no please".split(),
                      "thank you", "good bot", "bad bot", "hello there", "hi there"))


def closest_command(text: str) -> str | None:
    """The command the member most likely meant, by the first word or two."""
    words = text.casefold().split()
    if not words:
        return None
    candidates = [" ".join(words[:2]), words[0]]
    for candidate in candidates:
        close = difflib.get_close_matches(candidate[:40], COMMAND_WORDS, n=1, cutoff=0.6)
        if close:
            return close[0]
    return None


_FEED_USAGE = "feed add <url> [as episode|video|article|post] [name <name>] [every <interval>]"


def _parse_moderator(head: str, args: list[str]) -> Command | None:
    low = [a.casefold() for a in args]
    if head == "feeds":
        return Feeds() if not args else None
    if head == "status":
        return Status() if not args else None
    if head == "feed":
        if not args:
            return Usage("feed", f"usage: {_FEED_USAGE}, or feed remove|pause|resume|test <name>")
        if low[0] == "add":
            return _parse_feed_add(args[1:])
        if low[0] == "backfill":
            return _parse_backfill(args[1:])
        if low[0] in ("remove", "delete", "pause", "resume", "test"):
            if len(args) != 2:
                return Usage("feed", f"usage: feed {low[0]} <name>")
            action = "remove" if low[0] == "delete" else low[0]
            return FeedAction(action, args[1])
        if low[0] in ("list",) and len(args) == 1:
            return Feeds()
        return Usage("feed", f"usage: {_FEED_USAGE}, or feed remove|pause|resume|test <name>")
    if head == "announce":
        return _parse_announce(args, low)
    if head in ("filter", "filters"):
        if len(args) == 1:
            return FilterList(args[0])
        if len(args) == 2 and low[1] == "clear":
            return FilterClear(args[0])
        if len(args) >= 3 and low[1] in ("include", "exclude"):
            return FilterAdd(args[0], low[1], " ".join(args[2:]))
        return Usage("filter", "usage: filter <feed> include|exclude <words or /regex/>, "
                               "filter <feed> clear, or filter <feed>")
    return None


# -- announce, template, preview, backfill (issue #12) ----------------------------

_ANNOUNCE_USAGE = ("usage: announce <kinds> [from <feed>] here [mention <role>|mention none] [thread|no thread] "
                   "(adds), announce only <kinds> here (replaces), announce off [<kinds>] here, "
                   "announce digest daily|weekly|off here, announce pace <interval>|off here, "
                   "announce cap <posts a day>|off here, announce test here")


def _kinds(words: list[str]) -> tuple[str, ...]:
    return tuple(k for k in re.split(r"[,\s]+", " ".join(words)) if k and k != "and")


def _parse_announce(args: list[str], low: list[str]) -> Command:
    if "here" not in low:
        return Usage("announce", _ANNOUNCE_USAGE)
    at = low.index("here")
    before, rest, rest_low = low[:at], args[at + 1:], low[at + 1:]
    if before and before[0] in ("off", "stop") and not rest:
        return AnnounceOff(_kinds(before[1:]))
    if before == ["test"] and not rest:
        return AnnounceTest()
    if len(before) == 2 and before[0] == "digest" and not rest:
        if before[1] in ("off", "none"):
            return AnnounceDigest(None)
        if before[1] in ("daily", "weekly"):
            return AnnounceDigest(DigestPeriod(before[1]))
        return Usage("announce", "usage: announce digest daily|weekly|off here")
    if len(before) == 2 and before[0] == "pace" and not rest:
        return AnnouncePace(None if before[1] in ("off", "none") else args[1])
    if len(before) == 2 and before[0] in ("cap", "daily_cap", "limit") and not rest:
        if before[1] in ("off", "none"):
            return AnnounceCap(None)
        if before[1].isdigit() and len(before[1]) <= 4:
            return AnnounceCap(int(before[1]))
        return Usage("announce", "usage: announce cap <posts a day, e.g. 10>|off here")
    only = bool(before) and before[0] == "only"
    if only:
        before = before[1:]
    feed = None
    if "from" in before:
        f = before.index("from")
        if f + 2 != len(before):
            return Usage("announce", "usage: announce <kinds> from <feed> here")
        feed = args[f + 1 + (1 if only else 0)]
        before = before[:f]
    kinds = _kinds(before)
    if not kinds:
        return Usage("announce", _ANNOUNCE_USAGE)
    mention: str | None = None
    thread: bool | None = None
    i = 0
    while i < len(rest):
        word = rest_low[i]
        if word in ("thread", "threads"):
            thread, i = True, i + 1
        elif word in ("nothread", "nothreads"):
            thread, i = False, i + 1
        elif word == "no" and i + 1 < len(rest) and rest_low[i + 1] in ("thread", "threads"):
            thread, i = False, i + 2
        elif word == "mention" and i + 1 < len(rest):
            mention, i = rest[i + 1], i + 2
        else:
            return Usage("announce", _ANNOUNCE_USAGE)
    return AnnounceHere(kinds, mention, thread, only, feed)


_TEMPLATE_USAGE = ("usage: template list, template <name> here, template set here <text with {placeholders}>, "
                   "or template reset here")


def _parse_shaping(head: str, args: list[str], original: str) -> Command:
    low = [a.casefold() for a in args]
    if head == "preview":
        if len(args) == 1:
            return Preview(args[0])
        if len(args) == 2 and low[1] == "here":
            return Preview(args[0], here=True)
        return Usage("preview", "usage: preview <feed> [here]")
    if low in ([], ["list"]):
        return TemplateList()
    if low == ["reset", "here"]:
        return TemplateReset()
    if len(low) >= 2 and low[0] == "set" and low[1] == "here":
        # Everything after "set here", as typed; "\n" is a line break for
        # chat boxes that send one line.
        m = re.match(r"\s*\S+\s+set\s+here\s?", original, re.IGNORECASE)
        body = original[m.end():] if m else " ".join(args[2:])
        body = body.replace("\\n", "\n").strip()
        if not body:
            return Usage("template", _TEMPLATE_USAGE)
        return TemplateSet(body)
    if len(low) == 2 and low[1] == "here":
        return TemplateUse(low[0])
    return Usage("template", _TEMPLATE_USAGE)


def _parse_backfill(args: list[str]) -> Command:
    usage = "usage: feed backfill <name> <how many of its newest items, 1 to 50>"
    if len(args) != 2 or not args[1].isdigit() or len(args[1]) > 4:
        return Usage("feed", usage)
    return FeedBackfill(args[0], int(args[1]))


def _parse_feed_add(args: list[str]) -> Command:
    if not args:
        return Usage("feed", f"usage: {_FEED_USAGE}")
    url, rest = args[0], args[1:]
    kind: ContentKind | None = None
    name = every = None
    i = 0
    while i < len(rest):
        key = rest[i].casefold()
        value = rest[i + 1] if i + 1 < len(rest) else None
        if value is None or key not in ("as", "name", "every"):
            return Usage("feed", f"usage: {_FEED_USAGE}")
        if key == "as":
            kind = _kind(value)
            if kind is None:
                return Usage("feed", "a feed is one of: episode, video, article, post")
        elif key == "name":
            name = value
        else:
            every = value
        i += 2
    return FeedAdd(url, kind, name, every)


def _parse_why(args: list[str]) -> Command:
    """`why` takes the rest verbatim: a URL or a title, as the moderator wrote it."""
    if not args:
        return Usage("why", "usage: why <url or title>, e.g. `why https://example.com/episode-12`")
    return Why(" ".join(args))

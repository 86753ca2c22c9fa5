"""Help texts and "did you mean" for unknown input."""

from __future__ import annotations

import difflib

from bot.commands.grammar import closest_command
from bot.models import Reply

MEMBER_HELP = """\
Here is what I can do:
• `latest` / `latest episode|video|article|post` / `what's new` — the newest things
• `search <topic>` / `episodes on <topic>` / `videos about <topic>` — search the back catalogue
• `episode <number>` — one episode with its chapters
• `random episode [on <topic>]` — something to listen to
• `book` — the book: where to get it and the latest news about it
• `stats` — the numbers: catalogue, followers, episodes per month, how often each feed posts
• `subscribe <topic>` / `unsubscribe <topic>` / `subscriptions` — a DM when a new item matches
• `help <command>` — more about one command"""

MODERATOR_HELP = """\
Moderators:
• `feeds` / `status` — what is watched and how it is doing
• `feed add <url> [as episode|video|article|post] [name <name>] [every <interval>]`
• `feed remove|pause|resume|test <name>` / `feed backfill <name> <N>`
• `announce <kinds> [from <feed>] here [mention <role>] [thread]` adds kinds; `announce only <kinds> here` \
replaces them; `announce off [<kinds>] here`
• `announce digest daily|weekly here` / `announce pace <interval> here` / `announce cap <N> here` / \
`announce test here`
• `template list` / `template <name> here` / `template set here <text>` / `template reset here`
• `preview <feed> [here]` — the newest item as this channel would get it
• `filter <feed> include|exclude <words or /regex/>` / `filter <feed> clear`"""

# -- why (operators, issue #13): kept in its own block
MODERATOR_HELP += "\n• `why <url or title>` — why an item was or wasn't announced, step by step"

TOPICS: dict[str, str] = {
    "latest": "`latest` shows the newest items of every kind; `latest episode` (or video, article, "
              "post) the newest one of that kind; `latest episodes` a page of them. `what's new` works too.",
    "search": "`search <topic>` searches titles, chapter titles and descriptions (titles count most). "
              "`episodes on <topic>`, `videos about <topic>` and `anything on <topic>` work too. Plurals "
              "and word endings match (`indexes` finds `index`), synonyms too (`postgres` finds "
              "PostgreSQL, `k8s` finds Kubernetes), and a hit in a chapter links to that minute where "
              "the platform allows. Results come 5 at a time; ask for `search <topic> page 2`.",
    "episode": "`episode <number>` shows that episode with all its chapters, e.g. `episode 141`.",
    "random": "`random episode` picks one at random; `random episode on <topic>` picks among the "
              "search results for a topic. `random video` works too.",
    "stats": "`stats` (or `statistics`, `numbers`) counts what the catalogue holds per kind; shows "
             "the followers, following and posts of the watched X profile with their change over 7 "
             "and 30 days; episodes per month over the last 12 months; and, per feed, items per week "
             "over the last 90 days and the date of the newest one. With a chart where the bot "
             "can draw one.",
    "book": "`book` (or `the book`) shows the book, its links and the latest book news (up to 5, "
            "newest first, with dates and links).",
    "subscribe": "`subscribe <topic>`: I send you a direct message when a new item matches the "
                 "topic (matched like a search). `unsubscribe <topic>` stops it; `subscriptions` lists yours.",
    "feed": "`feed add <url> [as episode|video|article|post] [name <name>] [every <interval>]` "
            "fetches the feed once, refuses anything that is not a feed, and stores what is there "
            "without announcing it (and says so when no channel takes its kind). "
            "`feed remove|pause|resume <name>` do what they say; `feed test <name>` fetches it now and "
            "shows the newest item as it would be announced, posting nothing; `feed backfill <name> <N>` "
            "announces its newest N stored items to the channels that take them, once.",
    "announce": "`announce episode,video here` adds those kinds to this channel (kinds: episode video "
                "article post book profile milestone alert, or all; `alert` makes it the moderators' "
                "channel); `announce only <kinds> here` replaces them; `announce off <kinds> here` removes "
                "some, `announce off here` all. `from <feed>` takes them from that feed only (`from all`: "
                "every feed). `mention <role>` (or `mention none`) and `thread` (or `no thread`) stay until "
                "changed. Flood control: `announce pace 30s here` (one post every 30s at most), "
                "`announce cap 10 here` (posts a day; the rest wait for the next day, or go into the "
                "digest), `announce digest daily|weekly|off here` (one message with the period's items, at "
                "00:00 UTC). `announce test here` posts the newest item here for real, marked as a test. "
                "Every answer says what the channel had before and has now.",
    "template": "`template list` shows the gallery; `template <name> here` uses one; `template set here "
                "<text>` writes your own with {title} {url} {kind} {feed} {published} {duration} {episode} "
                "{summary} {chapters} {mention} (\\n is a line break, {{ }} are braces); `template reset "
                "here` goes back to the card. `preview <feed> here` shows it.",
    "preview": "`preview <feed> here` shows that feed's newest item exactly as this channel would get it "
               "(its template and mention, pinging nobody); `preview <feed>` with the default card.",
    "filter": "`filter <feed> include <words>` announces only items mentioning one of the words; "
              "`exclude` holds back items that do. A `/regex/` works too (kept simple: no nested "
              "repeats or backreferences). `filter <feed> clear` removes them, `filter <feed>` lists them.",
    "status": "`status` shows, per feed, the last success and error, failures in a row, the next "
              "poll, items stored, the last new item and the last delivery; per channel, whether it "
              "works, its last delivery, what waits (pace, daily cap) or is held for a digest; and how "
              "the config file differs from the database.",
}
TOPICS["why"] = (
    "`why <url or title>` tells an item's path through the bot, from what was recorded when each "
    "decision was made: stored at the first sync (baseline), older than max_age, held by a filter, "
    "no route takes its kind, queued for which routes, delivered where and when (with a link), waiting "
    "(behind earlier posts, a retry or a disconnected platform), or failed and why. Not found: the "
    "closest titles. Moderators only; also `showbot why` on the command line and the status page.")
TOPICS |= {
    "feeds": TOPICS["feed"], "what's new": TOPICS["latest"], "new": TOPICS["latest"],
    "episodes": TOPICS["search"], "videos": TOPICS["search"], "find": TOPICS["search"],
    "unsubscribe": TOPICS["subscribe"], "subscriptions": TOPICS["subscribe"],
    "filters": TOPICS["filter"], "templates": TOPICS["template"], "backfill": TOPICS["feed"],
    "digest": TOPICS["announce"], "statistics": TOPICS["stats"], "numbers": TOPICS["stats"], "help": "`help` lists what I can do; `help <command>` explains one.",
}


def help_reply(topic: str | None, *, moderator: bool) -> Reply:
    if topic is None:
        text = MEMBER_HELP + ("\n\n" + MODERATOR_HELP if moderator else "")
        return Reply(kind="help", text=text, ephemeral=True)
    key = topic.split(" ")[0].strip("`/")
    if key in TOPICS:
        return Reply(kind="help", text=TOPICS[key], ephemeral=True)
    close = difflib.get_close_matches(key, list(TOPICS), n=1, cutoff=0.5)
    hint = f" Did you mean `help {close[0]}`?" if close else ""
    return Reply(kind="help", text=f"I have no help on that.{hint} `help` lists everything.",
                 ephemeral=True)


def unknown_reply(text: str) -> Reply:
    guess = closest_command(text)
    if guess is not None:
        usage = TOPICS.get(guess.split(" ")[0], "")
        body = f"I didn't catch that. Did you mean `{guess}`?" + (f"\n{usage}" if usage else "")
    else:
        body = ("I didn't catch that. Try `latest`, `search <topic>` or `episode <number>`; "
                "`help` lists everything.")
    return Reply(kind="help", text=body, ephemeral=True)

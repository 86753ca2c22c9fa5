"""Moderator filters on what a feed announces. Pure.

A filter pattern is either words ("sponsored, giveaway": any of them, whole
words, case-insensitive) or a regex written ``/.../`` (optionally ``/.../i``;
matching is always case-insensitive).

Python's ``re`` backtracks and cannot be interrupted, and running it in a
worker with a timeout would cost a process per match. So the time bound is
static instead:
- the pattern is at most MAX_PATTERN characters;
- it is matched against at most MAX_TEXT characters of an item;
- patterns whose backtracking can blow up are refused before they are saved:
  backreferences, a repeat inside an unbounded repeat (``(a+)+``), an
  alternation or optional part inside an unbounded repeat (``(a|aa)*``), and
  patterns whose estimated work (text length x the widths of the repeats,
  multiplied for repeats in sequence since each can re-try the next) exceeds
  WORK_BUDGET. What is left is at worst quadratic on a 1000-character text:
  about 10 ms in the worst accepted case (measured in tests).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Sequence

from bot.errors import UserError
from bot.models import Item
from bot.verdicts import FilterHold

if TYPE_CHECKING:
    from bot.intents import FilterRule

try:  # Python 3.11+
    import re._parser as _sre_parse  # type: ignore[import-not-found]
    from re._constants import MAXREPEAT  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older layouts
    import sre_parse as _sre_parse  # type: ignore[no-redef]
    from sre_constants import MAXREPEAT  # type: ignore[no-redef]

MAX_PATTERN = 200
MAX_TEXT = 1000
MAX_WORDS = 50
WORK_BUDGET = 4_000_000

ItemFilter = Callable[[Item], bool]

_REGEX = re.compile(r"^/(.*)/(i?)$", re.S)
_WORD_SPLIT = re.compile(r"[,\s]+")


def compile_filter(pattern: str) -> Callable[[str], bool]:
    """A pattern -> text predicate. Raises UserError (with the reason) for a
    refused pattern."""
    pattern = pattern.strip()
    if not pattern:
        raise UserError("A filter needs words or a /regex/, e.g. `filter podcast exclude sponsored`.")
    if len(pattern) > MAX_PATTERN:
        raise UserError(f"That filter is too long ({len(pattern)} characters, at most {MAX_PATTERN}).")
    m = _REGEX.match(pattern)
    if m is None:
        return _words_filter(pattern)
    return _regex_filter(m.group(1))


def _words_filter(pattern: str) -> Callable[[str], bool]:
    words = [w for w in _WORD_SPLIT.split(pattern) if w]
    if len(words) > MAX_WORDS:
        raise UserError(f"Too many words in one filter (at most {MAX_WORDS}).")
    # Escaped literals in one alternation: linear time, no user syntax.
    regex = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE
    )
    return lambda text: regex.search(text[:MAX_TEXT]) is not None


def _regex_filter(body: str) -> Callable[[str], bool]:
    if not body:
        raise UserError("That regex is empty: write something between the slashes.")
    try:
        parsed = _sre_parse.parse(body, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        raise UserError(_regex_error(body, exc)) from None
    _check_safe(list(parsed))
    work = MAX_TEXT * _width(list(parsed))
    if work > WORK_BUDGET:
        raise UserError(
            "That regex could take too long to match (too many open-ended repeats); "
            "use fewer `*`, `+` or `{n,}`."
        )
    regex = re.compile(body, re.IGNORECASE)
    return lambda text: regex.search(text[:MAX_TEXT]) is not None


# Python's words for a broken pattern -> words for a moderator.
_REGEX_HINTS = (
    ("missing ), unterminated subpattern", "a `(` is never closed"),
    ("unbalanced parenthesis", "a `)` has no `(` before it"),
    ("unterminated character set", "a `[` is never closed"),
    ("nothing to repeat", "a `*`, `+`, `?` or `{n}` has nothing before it to repeat"),
    ("multiple repeat", "two repeats follow each other (like `a**`)"),
    ("bad escape", "a backslash escape isn't one a regex knows"),
    ("bad character range", "a range like `[z-a]` runs backwards"),
    ("unknown extension", "a `(?` group isn't one a regex knows"),
)


def _regex_error(body: str, exc: Exception) -> str:
    """A kind explanation instead of Python's ("missing ), unterminated
    subpattern at position 0")."""
    message = str(getattr(exc, "msg", "") or exc)
    hint = next((h for key, h in _REGEX_HINTS if message.startswith(key)), "it doesn't read as a regex")
    pos = getattr(exc, "pos", None)
    where = f" (at character {pos + 1})" if isinstance(pos, int) and 0 <= pos < len(body) else ""
    return (f"That /regex/ doesn't work: {hint}{where}. Put a backslash before a bracket you mean "
            "literally (\\( or \\[), or give plain words instead.")


def _check_safe(nodes: list) -> None:
    for op, arg in nodes:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise UserError("Backreferences (like \\1) are not allowed in filter regexes.")
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            sub = list(sub)
            if high != MAXREPEAT and high > 1000:
                raise UserError("Repeat counts above 1000 are not allowed in filter regexes.")
            if high > 1 and _has_choice(sub):
                raise UserError(
                    "Nested or alternating repeats like (a+)+ or (a|aa)* are not allowed in filter regexes: "
                    "they can take forever to match."
                )
            _check_safe(sub)
        elif name == "SUBPATTERN":
            _check_safe(list(arg[-1]))
        elif name == "BRANCH":
            for branch in arg[1]:
                _check_safe(list(branch))
        elif name in ("ASSERT", "ASSERT_NOT"):
            _check_safe(list(arg[1]))
        elif name == "ATOMIC_GROUP":
            _check_safe(list(arg))


def _has_choice(nodes: list) -> bool:
    """An alternation or an optional/repeated part: ways to match the same
    text differently, which an enclosing unbounded repeat multiplies."""
    for op, arg in nodes:
        name = str(op)
        if name == "BRANCH":
            return True
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return True
        if name == "SUBPATTERN" and _has_choice(list(arg[-1])):
            return True
    return False


def _width(nodes: list) -> int:
    """How many ways the repeats of a sequence can split a text (roughly):
    each repeat can give back up to its maximum width, and repeats in
    sequence multiply."""
    total = 1
    for op, arg in nodes:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            span = MAX_TEXT if high == MAXREPEAT else max(1, high - low + 1)
            total *= span * _width(list(sub))
        elif name == "SUBPATTERN":
            total *= _width(list(arg[-1]))
        elif name == "BRANCH":
            total *= sum(_width(list(b)) for b in arg[1])
        elif name in ("ASSERT", "ASSERT_NOT"):
            total *= _width(list(arg[1]))
        if total > WORK_BUDGET:
            return total
    return total


def make_item_judge(rules: Sequence[FilterRule]) -> Callable[[Item], FilterHold | None]:
    """Rules -> a judge of items: None = announce, else the FilterHold that
    names why not (the exclude rule that matched, or the include rules of
    which none did), for the item's decision record.

    With any include rule an item must match at least one of them; it must
    match no exclude rule. A stored pattern that no longer compiles (rules
    tightened after it was saved) is skipped rather than blocking the feed."""
    includes: list[tuple[str, Callable[[str], bool]]] = []
    excludes: list[tuple[str, Callable[[str], bool]]] = []
    for rule in rules:
        try:
            predicate = compile_filter(rule.pattern)
        except UserError:
            continue
        (includes if rule.mode == "include" else excludes).append((rule.pattern, predicate))
    include_patterns = tuple(p for p, _ in includes)

    def judge(item: Item) -> FilterHold | None:
        text = f"{item.title}\n{item.summary}"[:MAX_TEXT]
        if includes and not any(p(text) for _, p in includes):
            return FilterHold("include", include_patterns)
        for pattern, p in excludes:
            if p(text):
                return FilterHold("exclude", (pattern,))
        return None

    return judge


def make_item_filter(rules: Sequence[FilterRule]) -> ItemFilter:
    """Rules -> item predicate, True = announce (``make_item_judge`` says why not)."""
    judge = make_item_judge(rules)
    return lambda item: judge(item) is None

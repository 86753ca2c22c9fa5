"""Message templates: a moderator's text with placeholders. Pure.

The syntax is a whitelist, not an engine: ``{name}`` for one of
PLACEHOLDERS, ``{{`` and ``}}`` for literal braces, and nothing else. There
is no attribute access, indexing, filter or expression to abuse (a
``str.format`` template could reach ``{title.__class__}``), and a template
is parsed when it is saved, so a mistake is refused then, with the name of
the placeholder that is wrong, not at the next announcement.

Rendering yields ``Segment``s instead of a string: the template's own text
(LITERAL) and each value (feed TEXT, a LINK, the MENTION) stay apart so
every platform escapes feed text without touching the moderator's markup.
A line whose placeholders all came out empty is dropped ("{duration}" of an
article), so a template never posts a line of bare separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot.errors import UserError
from bot.models import Segment, SegmentRole

MAX_TEMPLATE_CHARS = 1000

# name -> what it shows (help, `template list`).
PLACEHOLDERS: dict[str, str] = {
    "title": "the item's title",
    "url": "its link",
    "kind": "episode, video, article, post, book, profile or milestone",
    "feed": "the feed's name",
    "published": "its publication date (2026-06-20)",
    "duration": "its length (46m 39s)",
    "episode": "its episode number",
    "summary": "the start of its description",
    "chapters": "its chapters, one a line, linked where the platform can open them",
    "mention": "the route's role or user group (put it first to ping at the start)",
}


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str


Part = str | Placeholder


@dataclass(frozen=True, slots=True)
class GalleryTemplate:
    name: str
    text: str | None  # None: the default card (no template)
    about: str


GALLERY: tuple[GalleryTemplate, ...] = (
    GalleryTemplate("card", None, "the default: a card with the title, summary, facts and chapters"),
    GalleryTemplate("link", "{title} {url}", "just the title and the link (the platform shows its own preview)"),
    GalleryTemplate("compact", "New {kind} from {feed}: {title} {url}", "one line that says what and where from"),
    GalleryTemplate("detailed", "{title}\n{published} · {duration}\n{summary}\n{url}",
                    "title, date and length, the summary, then the link"),
    GalleryTemplate("chapters", "{title} ({duration})\n{chapters}\n{url}",
                    "the title and every chapter, each opening at its minute where it can"),
    GalleryTemplate("ping", "{mention} {title} {url}", "the role first, then the title and the link"),
)
GALLERY_BY_NAME = {g.name: g for g in GALLERY}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[a-z]+$")


def _listed() -> str:
    return " ".join("{" + name + "}" for name in PLACEHOLDERS)


def parse_template(text: str) -> tuple[Part, ...]:
    """The template's parts. UserError (naming what is wrong) for anything
    that is not plain text, ``{{``, ``}}`` or a known ``{placeholder}``."""
    if not text.strip():
        raise UserError("A template needs some text, e.g. `template set here {title} {url}`.")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise UserError(f"Keep a template under {MAX_TEMPLATE_CHARS} characters (this one has {len(text)}).")
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise UserError("A `}` in a template has no `{` before it; write `}}` for a brace.")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        m = _PLACEHOLDER.match(text, i)
        if m is None:
            raise UserError("A `{` in a template is never closed; write `{{` for a brace.")
        name = m.group(1).strip()
        if name not in PLACEHOLDERS:
            if _NAME.match(name):
                raise UserError(f"There is no placeholder {{{name}}}. Placeholders: {_listed()}.")
            raise UserError(f"“{{{m.group(1)}}}” isn't a placeholder: only plain names like {{title}} "
                            f"work (no dots, brackets or code). Placeholders: {_listed()}.")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Placeholder(name))
        i = m.end()
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def check_template(text: str) -> str:
    """``text`` when it parses (the form stored), else UserError."""
    parse_template(text)
    return text


def render_template(parts: Sequence[Part], values: Mapping[str, Sequence[Segment]]) -> tuple[Segment, ...]:
    """The template with ``values`` in place. A value may be several
    segments (chapters: text and links). Lines whose placeholders all came
    out empty are dropped, and trailing spaces trimmed."""
    lines: list[list[Segment]] = [[]]
    flags: list[tuple[bool, bool]] = [(False, False)]  # (has a placeholder, one was filled)

    def literal(text: str) -> None:
        for n, piece in enumerate(text.split("\n")):
            if n:
                lines.append([])
                flags.append((False, False))
            if piece:
                lines[-1].append(Segment(piece, SegmentRole.LITERAL))

    for part in parts:
        if isinstance(part, str):
            literal(part)
            continue
        value = [s for s in values.get(part.name, ()) if s.text]
        has, filled = flags[-1]
        flags[-1] = (True, filled or bool(value))
        # A multi-line value (chapters) continues the current line, then
        # adds lines of its own: split its segments the same way.
        for segment in value:
            pieces = segment.text.split("\n")
            for n, piece in enumerate(pieces):
                if n:
                    lines.append([])
                    flags.append((True, True))
                if piece:
                    lines[-1].append(Segment(piece, segment.role))

    out: list[Segment] = []
    kept = [line for line, (has, filled) in zip(lines, flags) if not has or filled]
    for n, line in enumerate(kept):
        line = _rstrip(line)
        if n:
            out.append(Segment("\n", SegmentRole.LITERAL))
        out.extend(line)
    return tuple(merge_segments(_strip_edges(out)))


def _rstrip(line: list[Segment]) -> list[Segment]:
    while line and line[-1].role is SegmentRole.LITERAL and not line[-1].text.strip():
        line = line[:-1]
    if line and line[-1].role is SegmentRole.LITERAL:
        line = [*line[:-1], Segment(line[-1].text.rstrip(), SegmentRole.LITERAL)]
    return line


def _strip_edges(segments: list[Segment]) -> list[Segment]:
    """No blank lines or spaces at the very start or end of a message."""
    while segments and segments[0].role is SegmentRole.LITERAL and not segments[0].text.strip():
        segments = segments[1:]
    while segments and segments[-1].role is SegmentRole.LITERAL and not segments[-1].text.strip():
        segments = segments[:-1]
    if segments and segments[0].role is SegmentRole.LITERAL:
        segments[0] = Segment(segments[0].text.lstrip(), SegmentRole.LITERAL)
    return segments


def merge_segments(segments: list[Segment]) -> list[Segment]:
    """Adjacent segments of the same role as one (golden files stay readable)."""
    out: list[Segment] = []
    for s in segments:
        if out and out[-1].role is s.role and s.role in (SegmentRole.LITERAL, SegmentRole.TEXT):
            out[-1] = Segment(out[-1].text + s.text, s.role)
        else:
            out.append(s)
    return out

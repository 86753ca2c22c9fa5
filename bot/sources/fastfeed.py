"""Feed XML -> FeedDoc on lxml, for the shapes real feeds use; feedparser stays the fallback.

feedparser is pure Python: on a 540-episode podcast feed two thirds of an
ingest went to its SAX callbacks. This reader lets libxml2 build the tree
(hardened: no network, no DTD, no entity resolution, libxml2's default size
and depth limits) and then replays over that tree the part of feedparser's
*strict* parser (``feedparser.mixin`` and its namespace modules) that fills
the keys the normaliser reads: title, summary, content, link(s), id,
published/updated, enclosures, itunes:image/duration/episode, media
thumbnails and content, yt:videoId. It reproduces feedparser's rules, quirks
included (which of two titles wins, guid-as-link, depth rules, the UTF-8
"mis-decoding" repair), not the specs': the normaliser's output must not
depend on which reader ran. tests/test_fast_reader_differential.py checks
that over the project's fixtures and the real-world corpus.

It is deliberately a subset. Whenever it cannot be sure to give what
feedparser would, it declines the whole document and says why, and the
caller gives the same bytes to feedparser:
- the XML is not well formed (feedparser would switch to its loose parser),
  has a DOCTYPE, xml:base, or namespace declarations that feedparser would
  read differently depending on where they appear;
- the root is not RSS (any ``rss`` version) or Atom 1.0;
- an element feedparser has a handler for that is not replayed here
  (georss, Creative Commons, RDF admin, <image> inside an item, ...);
- markup inside a text element, base64 or XHTML content, a value element
  with children or attributes where feedparser would then do something odd,
  or a document on which feedparser itself would raise.

Small pieces of feedparser are called rather than copied (date parsing,
relative-URI fixing, the "looks like HTML" guess, the cp1252 table, the
namespace table): one home for each of those rules, and the pinned
feedparser version is the reference this reader is tested against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterable, Iterator, TypeVar

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from lxml import etree

from bot.sources import feedparser_ext  # noqa: F401 - before the handler table below is read
from bot.sources.feeddoc import FeedDoc

# --------------------------------------------------------------- the parser

# Hardened as the issue asks, and as strict as expat: anything libxml2 would
# only accept in recover mode is a document for feedparser's loose parser.
_PARSE_OPTIONS: dict[str, Any] = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    recover=False,
    remove_comments=True,  # feedparser ignores them; removing them merges the text around them
    remove_pis=True,
    collect_ids=False,
)


@dataclass(frozen=True, slots=True)
class Declined:
    """The reader will not vouch for this document; ``reason`` goes to the debug log."""

    reason: str


class _Decline(Exception):
    pass


# Bytes handed to libxml2 per step: ~0.3 ms of parsing on this machine.
CHUNK_BYTES = 64 * 1024

T = TypeVar("T")


def drain(steps: Generator[None, None, T]) -> T:
    """Run a step generator to the end in one go; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def read_feed(data: bytes) -> FeedDoc | Declined:
    """Hardened UTF-8 feed bytes (after ``feeds._harden``) -> FeedDoc, or Declined."""
    return drain(read_feed_steps(data))


def read_feed_steps(data: bytes) -> Generator[None, None, FeedDoc | Declined]:
    """``read_feed`` cut into steps of well under a millisecond (a chunk of
    bytes parsed, an entry replayed): the caller may yield to the event loop
    between any two, so a 2 MB feed never holds the loop for long."""
    # The push parser: chunks in, and the namespace declarations in
    # document order out (feedparser's view of prefixes depends on it).
    parser = etree.XMLPullParser(events=("start-ns",), **_PARSE_OPTIONS)
    declarations: list[tuple[str, str]] = []
    try:
        for start in range(0, len(data), CHUNK_BYTES):
            parser.feed(data[start:start + CHUNK_BYTES])
            declarations += [ns for _, ns in parser.read_events()]
            yield
        root = parser.close()
        declarations += [ns for _, ns in parser.read_events()]
    except etree.XMLSyntaxError as exc:
        return Declined(f"not well-formed XML: {str(exc)[:120]}")
    except (etree.LxmlError, ValueError, MemoryError) as exc:
        return Declined(f"lxml could not parse it: {type(exc).__name__}")
    try:
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise _Decline("has a DOCTYPE")
        return (yield from _Reader(declarations).read_steps(root))
    except _Decline as exc:
        return Declined(str(exc))
    except RecursionError:
        return Declined("nested too deep")


# ------------------------------------------------------ feedparser's tables

# feedparser's namespace URI -> its own prefix ("" for the RSS/Atom family),
# matched case-insensitively as feedparser does.
_KNOWN_NS: dict[str, str] = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_KNOWN_PREFIXES = frozenset(p.lower() for p in _KNOWN_NS.values())
_XLINK = "http://www.w3.org/1999/xlink"
# Every element name feedparser has a start or end handler for: an element
# with one of these names that is not replayed below declines the document.
_FEEDPARSER_HANDLERS = frozenset(
    name[len(prefix):]
    for name in dir(StrictFeedParser)
    for prefix in ("_start_", "_end_")
    if name.startswith(prefix)
)
_RELATIVE_URI_ELEMENTS = _FeedParserMixin.can_be_relative_uri
_HTML_TYPES = _FeedParserMixin.html_types
_looks_like_html: Callable[[str], bool] = _FeedParserMixin.looks_like_html
_RSS_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
_ATOM_VERSIONS = {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}
# feedparser's unknown_starttag: unprefixed elements other than these end
# an <image> / <textInput> block early (its "ill-formed feeds" hack).
_KEEPS_TEXTINPUT = frozenset({"title", "link", "description", "name"})
_KEEPS_IMAGE = frozenset({"title", "link", "description", "url", "href", "width", "height"})
_LINK_QUERY_FIX = re.compile("&([A-Za-z0-9_]+);")
# Elements without a feedparser handler whose text lands on a key the
# normaliser reads; and names that would overwrite feedparser's own keys.
_READ_PLAIN = frozenset({"itunes_duration", "itunes_episode", "yt_videoid"})
_CLASHING_PLAIN = frozenset(
    {"links", "title_detail", "summary_detail", "content_detail", "published_parsed",
     "updated_parsed", "guidislink", "tags", "psc_chapters", "textinput", "source"}
)


def _map_content_type(value: str) -> str:
    value = value.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html",
            "xhtml": "application/xhtml+xml"}.get(value, value)


def _repair_text(output: str) -> str:
    """pop()'s last steps: undo UTF-8 read as Latin-1, map cp1252 extensions."""
    if output.isascii():
        return output  # both steps are the identity on ASCII
    try:
        output = output.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return output.translate(_cp1252)


def _enforce_href(attrs: dict[str, str]) -> dict[str, str]:
    href = attrs.get("url", attrs.get("uri", attrs.get("href", None)))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href
    return attrs


_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _declared_prefix(el: Any, ns: str) -> str:
    """The prefix a namespaced attribute was written with (expat reports it)."""
    if ns == _XML_NS:
        return "xml"
    prefixes = [p for p, uri in el.nsmap.items() if uri == ns and p is not None]
    if len(prefixes) != 1:
        raise _Decline("a namespaced attribute whose prefix is ambiguous")
    return str(prefixes[0])


_Replay = Callable[["_Reader", Any, dict[str, str], "_Tag"], None]
_ReplaySteps = Callable[["_Reader", Any, dict[str, str], "_Tag"], Iterator[None]]


@dataclass(frozen=True, slots=True)
class _Tag:
    name: str  # feedparser's element name, e.g. "itunes:duration", "link"
    handler: str  # the suffix of feedparser's _start_/_end_ method, e.g. "itunes_duration"
    unprefixed: bool
    replay: _Replay
    # The outer blocks (rss, channel, feed) replay in steps, one per child.
    steps: _ReplaySteps | None = None


_EMPTY: dict[str, str] = {}


class _Reader:
    """feedparser's parser state, driven by a tree instead of SAX events."""

    def __init__(self, declarations: Iterable[tuple[str, str]]) -> None:
        self.version = ""
        self.namespacemap: dict[str | None, str] = {}
        self.in_use: dict[str, str] = {}
        self._track(declarations)
        self._tags: dict[str, _Tag] = {}
        self.depth = 0
        self.infeed = self.inentry = self.inimage = self.intextinput = self.insource = False
        self.has_content = False
        self.guidislink = False
        self.psc_chapters_flag = False
        self.title_depth = -1
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.sourcedata: dict[str, Any] = {}
        self.depths: dict[str, int] = {}  # property_depth_map of the current entry

    # -- namespaces --------------------------------------------------------------

    def _track(self, declarations: Iterable[tuple[str, str]]) -> None:
        """feedparser's track_namespace, in document order."""
        seen: dict[str | None, str] = {}
        for raw_prefix, uri in declarations:
            prefix = raw_prefix or None
            if not uri:
                continue
            if seen.setdefault(prefix, uri) != uri:
                # feedparser's prefix table changes mid-document: which
                # elements see which meaning depends on SAX event order.
                raise _Decline(f"namespace prefix {prefix!r} declared twice")
            if prefix and uri == _XLINK:
                raise _Decline("declares the xlink namespace")  # feedparser adds it to attributes
            lower = uri.lower()
            if not self.version:
                if (prefix, lower) == (None, "http://my.netscape.com/rdf/simple/0.9/"):
                    self.version = "rss090"
                elif lower == "http://purl.org/rss/1.0/":
                    self.version = "rss10"
                elif lower == "http://www.w3.org/2005/atom":
                    self.version = "atom10"
            if "backend.userland.com/rss" in lower:
                uri = lower = "http://backend.userland.com/rss"
            if lower in _KNOWN_NS:
                std = _KNOWN_NS[lower]
                self.namespacemap[prefix] = std
                self.in_use[std] = uri
            elif prefix is None:
                # feedparser reads elements in an unknown default namespace
                # as unprefixed, or prefixed, depending on declaration order.
                raise _Decline(f"unknown default namespace {uri[:80]!r}")
            else:
                self.in_use[prefix] = uri

    def _tag(self, clark: str) -> _Tag:
        """feedparser's name for an element (StrictFeedParser.startElementNS)."""
        if clark[0] == "{":
            ns, local = clark[1:].split("}", 1)
        else:
            ns, local = "", clark
        if not local.isascii():
            # libxml2 and expat disagree on some non-ASCII name characters
            raise _Decline("non-ASCII element name")
        lower = ns.lower()
        if "backend.userland.com/rss" in lower:
            ns = lower = "http://backend.userland.com/rss"
        local = local.lower()
        prefix = _KNOWN_NS.get(lower)
        name = local
        if prefix:
            name = prefix.lower() + ":" + local
        elif ns:
            for declared, uri in self.in_use.items():
                if declared and uri == ns:
                    name = declared.lower() + ":" + local
                    break
        pfx, _, suffix = name.partition(":") if ":" in name else ("", "", name)
        if self.namespacemap.get(pfx, pfx) != pfx:
            # feedparser maps this prefix again through the declarations seen
            # so far: the name would depend on where they appear.
            raise _Decline(f"element prefix {pfx!r} is remapped by a declaration")
        handler = f"{pfx}_{suffix}" if pfx else suffix
        steps = _REPLAY_STEPS.get(handler)
        replay = _REPLAY.get(handler)
        if steps is not None:
            def replay(reader: _Reader, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
                for _ in steps(reader, el, attrs, tag):
                    pass
        elif replay is None:
            if handler in _FEEDPARSER_HANDLERS:
                raise _Decline(f"<{name}> has feedparser rules this reader does not replay")
            if handler in _CLASHING_PLAIN:
                raise _Decline(f"<{name}> would overwrite a feedparser key")
            replay = _Reader._plain
        tag = _Tag(name, handler, not pfx, replay, steps)
        self._tags[clark] = tag
        return tag

    @staticmethod
    def _attrs(el: Any) -> dict[str, str]:
        """feedparser's attribute dict: lower-cased names, rel/type values lower-cased."""
        items = el.items()
        if not items:
            return _EMPTY
        # startElementNS: first (namespace, local) pairs, a known namespace's
        # attribute under feedparser's prefix and an unknown one's under its
        # bare local name; then every qualified name as written ("foo:url"),
        # so a plain "url" always wins over an unknown "foo:url".
        attrs: dict[str, str] = {}
        qnames: list[tuple[str, str]] = []
        for key, value in items:
            if key[0] == "{":
                ns, local = key[1:].split("}", 1)
                prefix = _KNOWN_NS.get(ns.lower(), "")
                qnames.append((f"{_declared_prefix(el, ns)}:{local}", value))
                key = f"{prefix}:{local}" if prefix else local
            else:
                qnames.append((key, value))
            attrs[key.lower()] = value
        for key, value in qnames:
            attrs[key.lower()] = value
        for key in ("rel", "type"):
            if key in attrs:
                attrs[key] = attrs[key].lower()
        if attrs.get("xml:base", attrs.get("base")):
            raise _Decline("uses xml:base")  # relative links would resolve against it
        return attrs

    # -- the walk ----------------------------------------------------------------

    def read_steps(self, root: Any) -> Generator[None, None, FeedDoc]:
        tag = self._tags.get(root.tag) or self._tag(root.tag)
        if tag.steps is None:
            raise _Decline(f"root element <{tag.name}> is not rss or feed")
        self.depth = 1
        yield from tag.steps(self, root, self._attrs(root), tag)
        self.depth = 0
        if tag.handler == "feed" and self.version != "atom10":
            raise _Decline(f"not Atom 1.0 ({self.version or 'no version'})")
        return FeedDoc(version=self.version, feed=self.feed, entries=self.entries, reader="lxml")

    def _visit_steps(self, parent: Any) -> Iterator[None]:
        """``_visit`` for the outer blocks: a step after each child."""
        tags = self._tags
        for el in parent:
            tag = tags.get(el.tag) or self._tag(el.tag)
            self.depth += 1
            if tag.unprefixed:
                if tag.name not in _KEEPS_TEXTINPUT:
                    self.intextinput = False
                if tag.name not in _KEEPS_IMAGE:
                    self.inimage = False
            if tag.steps is not None:
                yield from tag.steps(self, el, self._attrs(el), tag)
            else:
                tag.replay(self, el, self._attrs(el), tag)
            self.depth -= 1
            yield

    def _visit(self, parent: Any) -> None:
        tags = self._tags
        for el in parent:
            tag = tags.get(el.tag) or self._tag(el.tag)
            self.depth += 1
            if tag.unprefixed:
                if tag.name not in _KEEPS_TEXTINPUT:
                    self.intextinput = False
                if tag.name not in _KEEPS_IMAGE:
                    self.inimage = False
            tag.replay(self, el, self._attrs(el), tag)
            self.depth -= 1

    # -- feedparser's helpers ---------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        if self.insource:
            return self.sourcedata
        if self.inimage and "image" in self.feed:
            image: dict[str, Any] = self.feed["image"]
            return image
        if self.intextinput:
            textinput = self.feed.get("textinput")
            if textinput is None:
                raise _Decline("feedparser would fail on this <textInput>")
            return textinput  # type: ignore[no-any-return]
        if self.inentry:
            return self.entries[-1]
        return self.feed

    def _content_params(self, el: Any, attrs: dict[str, str], default: str, tag: _Tag,
                        *, read: bool = True) -> dict[str, str]:
        """push_content's contentparams, or decline what this reader does not replay."""
        if len(el):
            # feedparser turns child elements into inline XHTML markup
            raise _Decline(f"markup inside <{tag.name}>")
        ctype = _map_content_type(attrs.get("type", default))
        if read:
            if attrs.get("mode", "") == "base64" or not (
                ctype.startswith("text/") or ctype.endswith("+xml") or ctype.endswith("/xml")
            ):
                raise _Decline(f"base64 content in <{tag.name}>")
            if ctype == "application/xhtml+xml":
                raise _Decline(f"XHTML content in <{tag.name}>")
        return {"type": ctype}

    def _pop(self, el: Any, element: str, params: dict[str, str] | None = None,
             *, expecting: bool = True, store: bool = True) -> str:
        """feedparser's pop() for a text-only element pushed as ``element``."""
        if len(el):
            raise _Decline(f"<{element}> has child elements")
        text = el.text
        output = text.strip() if text else ""
        if not expecting:
            return output
        if element in _RELATIVE_URI_ELEMENTS and output and (element != "id" or self.guidislink):
            output = _urljoin("", output)  # no xml:base (declined), no content-location: base is ""
        if (params is not None and params["type"] == "text/plain"
                and not self.version.startswith("atom") and _looks_like_html(output)):
            params["type"] = "text/html"
        output = _repair_text(output)
        if element == "title" and -1 < self.title_depth <= self.depth:
            return output  # an earlier title at this depth or shallower wins
        if store:
            self._store(element, output, params)
        return output

    def _store(self, element: str, output: str, params: dict[str, str] | None) -> None:
        if self.inentry and not self.insource:
            entry = self.entries[-1]
            if element == "content":
                entry.setdefault("content", []).append({"type": params and params["type"], "value": output})
            elif element == "link":
                if not self.inimage:
                    if "&" in output:  # a template sub costs ~20 us even when it finds nothing
                        output = _LINK_QUERY_FIX.sub(r"&\g<1>", output.replace("&amp;", "&"))
                    entry["link"] = output
                    if output:
                        links = entry.get("links")
                        if not links:
                            raise _Decline("feedparser would fail on this <link>")
                        links[-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                old = self.depths.get(element)
                if old is None or self.depth <= old:
                    self.depths[element] = self.depth
                    entry[element] = output
                if params is not None:
                    entry[element + "_detail"] = {"type": params["type"], "value": output}
        elif self.infeed or self.insource:
            context = self._context()
            if element == "description":
                element = "subtitle"
            context[element] = output
            if element == "link":
                if "&" in output:
                    output = _LINK_QUERY_FIX.sub(r"&\g<1>", output)
                context["link"] = output
                links = context.get("links")
                if not links:
                    raise _Decline("feedparser would fail on this <link>")
                links[-1]["href"] = output
            elif params is not None:
                context[element + "_detail"] = {"type": params["type"], "value": output}

    # -- replayed handlers ---------------------------------------------------------

    def _plain(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """An element feedparser has no handler for: stored under its own name."""
        if tag.handler in _READ_PLAIN:
            if attrs:
                raise _Decline(f"<{tag.name}> with attributes")  # feedparser would store the attributes
            self._pop(el, tag.handler)
        else:
            self._visit(el)  # its own value is never read; its children may be

    def _podcast_episode(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """bot.sources.feedparser_ext's handler: the text, whatever the attributes."""
        self._pop(el, "podcast_episode")

    def _attributes_only(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """An element with no feedparser handler whose attributes are read
        (podcast:chapters, podcast:transcript): feedparser's unknown_starttag
        stores its attributes as a dict under its name (the last one of a
        kind wins), or, with none, its text like any unknown element."""
        if not attrs:
            self._pop(el, tag.handler)  # its text replaces an earlier one's attributes
            return
        self._context()[tag.handler] = dict(attrs)
        self._visit(el)

    def _rss(self, el: Any, attrs: dict[str, str], tag: _Tag) -> Iterator[None]:
        if self.depth != 1:
            raise _Decline("nested <rss>")
        if not self.version or not self.version.startswith("rss"):
            version = attrs.get("version", "")
            self.version = _RSS_VERSIONS.get(version) or ("rss20" if version.startswith("2.") else "rss")
        yield from self._visit_steps(el)

    def _feed_root(self, el: Any, attrs: dict[str, str], tag: _Tag) -> Iterator[None]:
        if self.depth != 1:
            raise _Decline(f"nested <{tag.name}>")
        self.infeed = True
        if not self.version:
            self.version = _ATOM_VERSIONS.get(attrs.get("version", ""), "atom")
        yield from self._visit_steps(el)
        self.infeed = False

    def _channel(self, el: Any, attrs: dict[str, str], tag: _Tag) -> Iterator[None]:
        if self.infeed or self.inentry or self.depth != 2:
            raise _Decline("<channel> out of place")
        if "lastmod" in attrs or "href" in attrs:
            raise _Decline("<channel> with CDF attributes")
        self.infeed = True
        yield from self._visit_steps(el)
        self.infeed = False

    def _item(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if self.inentry or self.insource or self.inimage or self.intextinput:
            raise _Decline(f"<{tag.name}> nested in another block")
        if "lastmod" in attrs or "href" in attrs or any(k.endswith(":about") for k in attrs):
            raise _Decline(f"<{tag.name}> with CDF or RDF attributes")
        self.entries.append({})
        self.depths = {}
        self.inentry = True
        self.guidislink = False
        self.title_depth = -1
        self._visit(el)
        self.inentry = False
        self.has_content = False

    def _image(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if self.inentry or self.inimage:
            # feedparser then writes the item's <image> children into the feed's image
            raise _Decline("<image> inside an entry or another <image>")
        self._context().setdefault("image", {})
        self.inimage = True
        self.title_depth = -1
        self._visit(el)
        self.inimage = False

    def _textinput(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if self.inentry or self.intextinput:
            raise _Decline("<textInput> inside an entry")
        self._context().setdefault("textinput", {})
        self.intextinput = True
        self.title_depth = -1
        self._visit(el)
        self.intextinput = False

    def _source(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if self.insource:
            raise _Decline("nested <source>")
        if "url" in attrs:
            self.sourcedata["href"] = attrs["url"]
        self.insource = True
        self.title_depth = -1
        self._visit(el)
        self.insource = False
        self.sourcedata = {}

    def _title(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        params = self._content_params(el, attrs, "text/plain", tag)
        value = self._pop(el, "title", params, expecting=self.infeed or self.inentry or self.insource)
        if value and tag.handler != "media_title":  # _end_media_title restores title_depth
            self.title_depth = self.depth

    def _description(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if "summary" in self._context() and not self.has_content:
            self._content(el, attrs, tag)
            return
        params = self._content_params(el, attrs, "text/html", tag)
        self._pop(el, "description", params, expecting=self.infeed or self.inentry or self.insource)

    def _summary(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if "summary" in self._context() and not self.has_content:
            self._content(el, attrs, tag)
            return
        self._pop(el, "summary", self._content_params(el, attrs, "text/plain", tag))

    def _content(self, el: Any, attrs: dict[str, str], tag: _Tag, default: str = "text/plain") -> None:
        self.has_content = True
        params = self._content_params(el, attrs, default, tag)
        copy_to_summary = params["type"] in ("text/plain", "text/html", "application/xhtml+xml")
        value = self._pop(el, "content", params)
        if copy_to_summary:
            self._context().setdefault("summary", value)

    def _content_encoded(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        self._content(el, attrs, tag, "text/html")

    def _other_text(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """subtitle, rights, info: text constructs whose values are never read."""
        self._content_params(el, attrs, "text/plain", tag, read=False)

    def _link(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        attrs = dict(attrs)
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        context = self._context()
        _enforce_href(attrs)
        if "href" in attrs:
            attrs["href"] = _urljoin("", attrs["href"])
        expecting = self.infeed or self.inentry or self.insource
        links = context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            links.append(attrs)
        if "href" in attrs:
            if attrs.get("rel") == "alternate" and _map_content_type(attrs.get("type") or "") in _HTML_TYPES:
                context["link"] = attrs["href"]
            self._visit(el)
        else:
            self._pop(el, "link", expecting=expecting)

    def _guid(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        self.guidislink = attrs.get("ispermalink", "true") == "true"
        value = self._pop(el, "id")
        if self.guidislink:
            self._context().setdefault("link", value)  # a permalink guid is the link when there is none

    def _published(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        value = self._pop(el, "published", store=False)
        self._context()["published_parsed"] = _parse_date(value)

    def _updated(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        value = self._pop(el, "updated", store=False)
        self._context()["updated_parsed"] = _parse_date(value)

    def _enclosure(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        attrs = _enforce_href(dict(attrs))
        context = self._context()
        attrs["rel"] = "enclosure"
        context.setdefault("links", []).append(attrs)
        self._visit(el)

    def _itunes_image(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if attrs.get("href"):
            self._context()["image"] = {"href": attrs["href"]}
        elif attrs.get("url"):
            self._context()["image"] = {"href": attrs["url"]}
        self._visit(el)

    def _media_thumbnail(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        thumbnails = self._context().setdefault("media_thumbnail", [])
        thumbnail = dict(attrs)
        thumbnails.append(thumbnail)
        url = self._pop(el, "url", store=False)
        if url and "url" not in thumbnail:
            thumbnail["url"] = url

    def _media_content(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        self._context().setdefault("media_content", []).append(dict(attrs))
        self._visit(el)

    def _href(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """<url>, <uri>, <homepage> (and a bare <href>): pushed as "href"; an image's URL."""
        if attrs and tag.handler == "href":
            raise _Decline("<href> with attributes")
        self._pop(el, "href")

    def _psc_chapters(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        context = self._context()
        if "psc_chapters" not in context:
            self.psc_chapters_flag = True
            context["psc_chapters"] = True
        self._visit(el)
        self.psc_chapters_flag = False

    def _psc_chapter(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        if self.psc_chapters_flag and ("start" not in attrs or "psc_chapters" not in self._context()):
            raise _Decline("feedparser would fail on this <psc:chapter>")
        self._visit(el)

    def _harmless(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """Handlers that only touch keys the normaliser never reads (authors, tags, ...)."""
        self._visit(el)

    def _harmless_leaf(self, el: Any, attrs: dict[str, str], tag: _Tag) -> None:
        """Handlers whose end would raise in feedparser on attributes or children
        (they use what pop() returns, None when the stack is not as they left it)."""
        if len(el) or (attrs and tag.handler in ("itunes_keywords", "media_keywords")):
            raise _Decline(f"feedparser would fail on this <{tag.name}>")


_R = _Reader
_REPLAY_STEPS: dict[str, _ReplaySteps] = {"rss": _R._rss, "feed": _R._feed_root, "channel": _R._channel}
_REPLAY: dict[str, _Replay] = {
    "item": _R._item,
    "entry": _R._item,
    "image": _R._image,
    "textinput": _R._textinput,
    "source": _R._source,
    **dict.fromkeys(("title", "dc_title", "media_title"), _R._title),
    **dict.fromkeys(("description", "dc_description", "media_description"), _R._description),
    **dict.fromkeys(("summary", "itunes_summary"), _R._summary),
    "content": _R._content,
    "content_encoded": _R._content_encoded,
    **dict.fromkeys(
        ("subtitle", "tagline", "itunes_subtitle", "rights", "copyright", "dc_rights", "info",
         "feedburner_browserfriendly"),
        _R._other_text,
    ),
    "link": _R._link,
    **dict.fromkeys(("guid", "id"), _R._guid),
    **dict.fromkeys(("pubdate", "published", "issued", "dcterms_issued"), _R._published),
    **dict.fromkeys(("updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"), _R._updated),
    "enclosure": _R._enclosure,
    **dict.fromkeys(("itunes_image", "itunes_link"), _R._itunes_image),
    "media_thumbnail": _R._media_thumbnail,
    "media_content": _R._media_content,
    **dict.fromkeys(("url", "uri", "homepage", "href"), _R._href),
    # The Podcasting 2.0 namespace is unknown to feedparser: its elements are
    # named by the prefix the feed declares ("podcast" in practice; another
    # prefix gives other keys, the same in both readers).
    "podcast_episode": _R._podcast_episode,
    **dict.fromkeys(("podcast_chapters", "podcast_transcript"), _R._attributes_only),
    "psc_chapters": _R._psc_chapters,
    "psc_chapter": _R._psc_chapter,
    **dict.fromkeys(
        ("media_group", "author", "managingeditor", "dc_author", "dc_creator", "itunes_author",
         "contributor", "dc_contributor", "name", "email", "itunes_name", "itunes_email",
         "itunes_owner", "webmaster", "dc_publisher", "category", "keywords", "dc_subject",
         "itunes_category", "media_category", "language", "dc_language", "generator", "cloud",
         "created", "dcterms_created", "expirationdate", "itunes_block",
         "itunes_explicit", "media_rating", "media_credit", "media_restriction", "media_license",
         "media_player"),
        _R._harmless,
    ),
    **dict.fromkeys(("itunes_keywords", "media_keywords", "tags", "dcterms_valid", "newlocation",
                     "width", "height"), _R._harmless_leaf),
}

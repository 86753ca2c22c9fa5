"""Random RSS and Atom documents built from the elements whose feedparser rules are quirky.

``mixed_feed(seed)`` gives deterministic bytes: the same seed, the same
document. The pieces are the ones where feedparser's behaviour is easy to
get wrong when reproducing it: two titles of different kinds (which one
wins depends on order and depth), a permalink guid standing in for a missing
link, description after content:encoded (it becomes content), dates of
several kinds (the last one wins, even unparseable), UTF-8 read as Latin-1
("Ã©", feedparser repairs it), cp1252 control characters, relative and
"http:///" links, enclosures with url/href/URL, media:group and
media:content with children, namespaced and upper-case attributes, upper-case
element names, an <image> or <textInput> in the channel, items outside the
channel, alternative namespace URIs and prefixes.

The differential test feeds these to both readers and requires equal
normalised output whenever the fast reader accepts a document.
"""

from __future__ import annotations

import random
from xml.sax.saxutils import quoteattr

TEXTS = (
    "Hello", "  spaced  out  ", "AT&amp;T", "a &lt;b&gt;bold&lt;/b&gt; move",
    "<![CDATA[<p>para</p><p>two</p>]]>", "Caf\u00e9", "\u00c3\u00a9t\u00c3\u00a9",
    "smart \u0093quotes\u0094", "0:00 Intro 1:30 Next 3:00 End", "",
    "&lt;p&gt;0:00 Intro&lt;br&gt;2:00 Body&lt;/p&gt;", "http://example.com/x?a=1&amp;b=2",
    "/relative/path", "ep-12", "https:///triple.example/a", "Mon, 06 Sep 2021 16:45:00 +0000",
    "2021-09-06T16:45:00Z", "not a date", "1:02:03", "3723", "12", " 7 ", "&amp;amp; &amp;copy;",
    "<![CDATA[x &amp; y]]>", "tab\there\nnewline", "&#x2014; dash", "yt123", "\u00a0nbsp\u00a0",
    "\u2003em\u2003", "line\r\nbreak", "<![CDATA[]]>", "&#160;x", "x&#x85;y",
    "<![CDATA[<b>b</b>]]> &amp; <![CDATA[<i>i</i>]]>", "&lt;/p&gt; &amp;nbsp; &amp;bogus;",
    "\u00e2\u0080\u0099",
)
NAMESPACES = (
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:podcast="https://podcastindex.org/namespace/1.0" '
    'xmlns:googleplay="http://www.google.com/schemas/play-podcasts/1.0" xmlns:foo="http://foo.example/ns" '
    'xmlns:dcterms="http://purl.org/dc/terms/"'
)


class _Mix:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def t(self) -> str:
        return self.r.choice(TEXTS)

    def maybe(self, value: str, p: float = 0.5) -> str | None:
        return value if self.r.random() < p else None

    def one(self, *options: str) -> str:
        return self.r.choice(options)

    @staticmethod
    def attrs(*pairs: tuple[str, str | None]) -> str:
        return "".join(f" {k}={quoteattr(v)}" for k, v in pairs if v is not None)

    def item(self, atom: bool) -> str:
        t, a, maybe, one = self.t, self.attrs, self.maybe, self.one
        out = []
        for _ in range(self.r.randint(0, 9)):
            kind = self.r.choice((
                "title", "title", "desc", "desc", "link", "guid", "date", "date2", "enc", "itimg", "dur",
                "ep", "thumb", "mcontent", "mgroup", "content", "isum", "dctitle", "mtitle", "cat",
                "author", "source", "alink", "mdesc", "yt", "plain", "comments", "case", "nsattr",
                "nested", "empty", "atomin", "misc", "misc", "p20", "p20",
            ))
            if kind == "title":
                out.append(f"<title{a(('type', maybe(one('text', 'html', 'text/plain', 'TEXT'), 0.3)))}>{t()}</title>")
            elif kind == "desc":
                out.append(f"<summary{a(('type', maybe(one('text', 'html'))))}>{t()}</summary>" if atom
                           else f"<description>{t()}</description>")
            elif kind == "link":
                out.append(
                    f"<link{a(('rel', maybe(one('alternate', 'self', 'enclosure', 'ALTERNATE'))), ('type', maybe(one('text/html', 'audio/mpeg', 'application/xhtml+xml'))), ('href', t()))}/>"
                    if atom else f"<link>{t()}</link>")
            elif kind == "guid":
                out.append(f"<id>{t()}</id>" if atom
                           else f"<guid{a(('isPermaLink', maybe(one('true', 'false', 'True'))))}>{t()}</guid>")
            elif kind == "date":
                out.append(f"<published>{t()}</published>" if atom else f"<pubDate>{t()}</pubDate>")
            elif kind == "date2":
                out.append(one(f"<dc:date>{t()}</dc:date>",
                               f"<updated>{t()}</updated>" if atom else f"<atom:updated>{t()}</atom:updated>"))
            elif kind == "enc":
                out.append(f"<enclosure{a(('url', maybe(t(), 0.8)), ('type', maybe(one('audio/mpeg', 'Video/MP4', 'image/jpeg'))), ('href', maybe(t(), 0.2)))}/>")
            elif kind == "itimg":
                out.append(f"<itunes:image{a(('href', maybe(t())), ('url', maybe(t())))}/>")
            elif kind == "dur":
                out.append(f"<itunes:duration>{t()}</itunes:duration>")
            elif kind == "ep":
                out.append(f"<itunes:episode>{t()}</itunes:episode>")
            elif kind == "thumb":
                out.append(one(f"<media:thumbnail{a(('url', t()))}/>", f"<media:thumbnail>{t()}</media:thumbnail>"))
            elif kind == "mcontent":
                inner = one("", f"<media:title>{t()}</media:title>", f"<media:description>{t()}</media:description>")
                out.append(f"<media:content{a(('url', maybe(t(), 0.8)), ('medium', maybe(one('image', 'video'))), ('type', maybe(one('image/png', 'video/mp4'))))}>{inner}</media:content>")
            elif kind == "mgroup":
                parts = [f"<media:title>{t()}</media:title>", f"<media:description>{t()}</media:description>",
                         f"<media:thumbnail url={quoteattr(t())}/>", f"<media:content url={quoteattr(t())} medium='image'/>"]
                out.append("<media:group>" + "".join(self.r.sample(parts, self.r.randint(0, 4))) + "</media:group>")
            elif kind == "content":
                out.append(f"<content{a(('type', maybe(one('text', 'html', 'text/html'))))}>{t()}</content>" if atom
                           else f"<content:encoded>{t()}</content:encoded>")
            elif kind == "isum":
                out.append(f"<itunes:summary>{t()}</itunes:summary>")
            elif kind == "dctitle":
                out.append(f"<dc:title>{t()}</dc:title>")
            elif kind == "mtitle":
                out.append(f"<media:title>{t()}</media:title>")
            elif kind == "mdesc":
                out.append(f"<media:description>{t()}</media:description>")
            elif kind == "cat":
                out.append(f"<category>{t()}</category>")
            elif kind == "author":
                out.append(one(f"<author>{t()}</author>", f"<dc:creator>{t()}</dc:creator>",
                               "<author><name>N</name><email>e@x.org</email></author>"))
            elif kind == "source":
                out.append(one(f"<source url='http://s.example/'>{t()}</source>",
                               "<source><title>S</title><id>src</id></source>"))
            elif kind == "alink":
                out.append(f"<link href={quoteattr(t())}/>" if atom
                           else f"<atom:link{a(('rel', maybe(one('alternate', 'self', 'enclosure'))), ('href', t()), ('type', maybe('text/html')))}/>")
            elif kind == "yt":
                out.append(f"<yt:videoId>{t()}</yt:videoId>")
            elif kind == "plain":
                out.append(one(f"<itunes:episodeType>{t()}</itunes:episodeType>", "<podcast:transcript url='http://t'/>",
                               f"<googleplay:description>{t()}</googleplay:description>",
                               f"<foo:bar><foo:baz>{t()}</foo:baz></foo:bar>"))
            elif kind == "p20":  # Podcasting 2.0: episode numbers, chapters and transcript links
                url = one(t(), "https://cdn.example/ch/12.json?a=1&amp;b=2", "https://cdn.example/ch/12.json?x=&amp;amp;y",
                          "/relative/chapters.json", "")
                out.append(one(
                    f"<podcast:episode>{t()}</podcast:episode>",
                    f"<podcast:episode>{self.r.randint(0, 999)}</podcast:episode>",
                    f"<podcast:episode display={quoteattr(t())}>{self.r.randint(1, 9)}</podcast:episode>",
                    f"<podcast:chapters{a(('url', maybe(url, 0.9)), ('type', maybe(one('application/json+chapters', 'Application/JSON'))))}/>",
                    f"<podcast:transcript{a(('url', maybe(url, 0.9)), ('type', maybe(one('application/srt', 'text/vtt', 'text/html', 'application/json'))), ('language', maybe('en')))}/>",
                    f"<podcast:chapters>{t()}</podcast:chapters>",
                ))
            elif kind == "comments":
                out.append(f"<comments>{t()}</comments>")
            elif kind == "case":
                out.append(one(f"<PubDate>{t()}</PubDate>", f"<Title>{t()}</Title>",
                               f"<enclosure URL={quoteattr(t())} TYPE='Audio/MPEG'/>",
                               f"<itunes:Duration>{t()}</itunes:Duration>", f"<GUID isPermaLink='false'>{t()}</GUID>"))
            elif kind == "nsattr":
                out.append(one(f"<enclosure foo:url={quoteattr(t())} url={quoteattr(t())} type='audio/mpeg'/>",
                               f"<enclosure foo:url={quoteattr(t())} type='audio/mpeg'/>",
                               f"<title xml:lang='en'>{t()}</title>",
                               f"<media:content foo:medium='image' url={quoteattr(t())}/>",
                               f"<itunes:duration foo:x='1'>{t()}</itunes:duration>"))
            elif kind == "nested":
                out.append(one(
                    f"<foo:wrap><title>{t()}</title></foo:wrap>", f"<foo:wrap><link>{t()}</link><guid>{t()}</guid></foo:wrap>",
                    f"<category><title>{t()}</title></category>", f"<author><title>{t()}</title></author>",
                    f"<media:group><media:content url={quoteattr(t())}><media:thumbnail url={quoteattr(t())}/><media:title>{t()}</media:title></media:content></media:group>",
                    f"<foo:wrap><description>{t()}</description></foo:wrap>", f"<foo:wrap><pubDate>{t()}</pubDate></foo:wrap>"))
            elif kind == "empty":
                out.append(one("<title/>", "<description/>", "<guid/>", "<link/>", "<pubDate/>", "<itunes:duration/>",
                               "<content:encoded/>", "<media:thumbnail/>", "<enclosure/>"))
            elif kind == "atomin":
                out.append(f"<updated>{t()}</updated>" if atom else one(
                    f"<atom:summary>{t()}</atom:summary>", f"<atom:content type='html'>{t()}</atom:content>",
                    f"<atom:id>{t()}</atom:id>", f"<atom:title>{t()}</atom:title>", f"<atom:published>{t()}</atom:published>"))
            elif kind == "misc":
                out.append(one(
                    f"<itunes:subtitle>{t()}</itunes:subtitle>", f"<dc:rights>{t()}</dc:rights>",
                    f"<itunes:keywords>{t()}</itunes:keywords>", "<itunes:explicit>yes</itunes:explicit>",
                    "<media:rating>adult</media:rating>",
                    "<itunes:category text='Tech'><itunes:category text='News'/></itunes:category>",
                    "<language>en</language>", f"<expirationDate>{t()}</expirationDate>",
                    f"<dcterms:modified>{t()}</dcterms:modified>", f"<lastBuildDate>{t()}</lastBuildDate>",
                    f"<issued>{t()}</issued>", f"<modified>{t()}</modified>", f"<url>{t()}</url>", f"<href>{t()}</href>",
                    f"<image><url>{t()}</url></image>", f"<itunes:link href={quoteattr(t())}/>", "<tags>a, b</tags>"))
        return "".join(out)

    def channel(self, atom: bool) -> list[str]:
        t, a, maybe, one = self.t, self.attrs, self.maybe, self.one
        out = []
        for _ in range(self.r.randint(0, 5)):
            kind = self.r.choice(("title", "link", "image", "itimg", "desc", "alink", "dctitle", "mtitle",
                                  "summary", "id", "textinput", "content", "misc"))
            if kind == "title":
                out.append(f"<title>{t()}</title>")
            elif kind == "link":
                out.append(f"<link{a(('rel', maybe('alternate')), ('href', t()))}/>" if atom else f"<link>{t()}</link>")
            elif kind == "image" and not atom:
                out.append(f"<image>{one('', f'<url>{t()}</url>')}{one('', f'<title>{t()}</title>')}<link>{t()}</link></image>")
            elif kind == "itimg":
                out.append(f"<itunes:image href={quoteattr(t())}/>")
            elif kind == "desc":
                out.append(f"<subtitle>{t()}</subtitle>" if atom else f"<description>{t()}</description>")
            elif kind == "alink" and not atom:
                out.append(f"<atom:link{a(('rel', maybe(one('self', 'alternate'))), ('href', t()))}/>")
            elif kind == "dctitle":
                out.append(f"<dc:title>{t()}</dc:title>")
            elif kind == "mtitle":
                out.append(f"<media:title>{t()}</media:title>")
            elif kind == "summary":
                out.append(f"<itunes:summary>{t()}</itunes:summary>")
            elif kind == "id" and atom:
                out.append(f"<id>{t()}</id>")
            elif kind == "textinput" and not atom:
                out.append(f"<textInput><title>{t()}</title><link>{t()}</link><name>n</name><description>{t()}</description></textInput>")
            elif kind == "content":
                out.append(one(f"<content:encoded>{t()}</content:encoded>", f"<summary>{t()}</summary>"))
            elif kind == "misc":
                out.append(one(f"<image><url>{t()}</url><foo:x/><title>{t()}</title></image>",
                               f"<image><title>{t()}</title><pubDate>x</pubDate><title>{t()}</title></image>",
                               "<itunes:owner><itunes:name>n</itunes:name></itunes:owner>", "<generator>g</generator>",
                               "<cloud domain='x'/>"))
        return out

    def feed(self) -> bytes:
        atom = self.r.random() < 0.35
        parts = self.channel(atom)
        entry = "entry" if atom else "item"
        parts += [f"<{entry}>{self.item(atom)}</{entry}>" for _ in range(self.r.randint(0, 4))]
        if self.r.random() < 0.3:
            self.r.shuffle(parts)  # items before the channel's title, link, image...
        body = "".join(parts)
        ns = NAMESPACES
        if self.r.random() < 0.2:  # the other URIs feedparser knows for the same namespaces
            ns = ns.replace("http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss")
            ns = ns.replace("http://www.itunes.com/dtds/podcast-1.0.dtd", "http://www.itunes.com/DTDs/PodCast-1.0.dtd")
        if self.r.random() < 0.2:  # another prefix for a known namespace
            ns = ns.replace("xmlns:media=", "xmlns:m=")
            body = body.replace("<media:", "<m:").replace("</media:", "</m:")
        if atom:
            head = f'<feed xmlns="http://www.w3.org/2005/Atom" {ns}>'
            return f'<?xml version="1.0" encoding="utf-8"?>{head}{body}</feed>'.encode()
        head = f'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" {ns}>'
        if self.r.random() < 0.15:  # items after the channel, straight under <rss>
            return f'<?xml version="1.0"?>{head}<channel><title>c</title></channel>{body}</rss>'.encode()
        return f'<?xml version="1.0" encoding="utf-8"?>{head}<channel>{body}</channel></rss>'.encode()


def mixed_feed(seed: int) -> bytes:
    return _Mix(seed).feed()

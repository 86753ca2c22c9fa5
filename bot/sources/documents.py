"""Fetching the documents an item links to (podcast:chapters, podcast:transcript).

Network and parsing only, no storage: the poller decides what to fetch
(bot.documents) and hands the outcomes to storage. The same guarded fetcher
as feeds (SSRF guard, redirects re-checked, overall timeout), with a cap
per kind (bot.documents.max_bytes). Parsing runs in a thread: a 2 MB
transcript takes long enough to be felt by the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.documents import DocumentFetch, max_bytes
from bot.models import Chapter, DocumentKind, TranscriptSegment
from bot.sources.chapters import parse_chapters_json
from bot.sources.http import HttpFetcher
from bot.sources.transcripts import parse_transcript


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    chapters: tuple[Chapter, ...] | None = None
    segments: tuple[TranscriptSegment, ...] | None = None


async def fetch_document(fetcher: HttpFetcher, wanted: DocumentFetch) -> FetchedDocument:
    """Fetch and parse one document. Raises SourceError (FetchError,
    DocumentParseError) and nothing else."""
    result = await fetcher.fetch(wanted.url, max_body_bytes=max_bytes(wanted.kind))
    body = result.body or b""
    if wanted.kind is DocumentKind.CHAPTERS:
        return FetchedDocument(chapters=await asyncio.to_thread(parse_chapters_json, body))
    # The server's Content-Type over the feed's declared type only when the
    # feed declared none: hosts serve SRT as text/plain or octet-stream.
    media_type = wanted.media_type or (result.content_type or "").split(";")[0].strip().lower() or None
    return FetchedDocument(segments=await asyncio.to_thread(parse_transcript, body, media_type))

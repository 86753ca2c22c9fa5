"""Is a video a Short? One guarded HEAD of ``{base_url}/shorts/{id}``.

Why a HEAD and not the uploads-without-Shorts playlist feed (UULF...): the
HEAD answers for exactly the video in question, costs one small request per
*new* video (none for the baseline, none for old ones), and needs nothing
but the video id. The playlist feed needs the channel id, costs a second
full feed fetch every poll, lists only the newest 15 long videos, and
leaves out past live streams too (they would read as Shorts); a video
missing from it because its cache lags would be taken for a Short and never
announced. YouTube answers the HEAD with 200 for a Short and a redirect
(303) to /watch for any other video.
"""

from __future__ import annotations

from bot.errors import FetchError
from bot.sources.http import HttpFetcher, ProbeResult
from bot.sources.youtube.addresses import YouTubeAddresses


def parse_shorts_answer(answer: ProbeResult) -> bool | None:
    """200: a Short; a redirect (to /watch): not; anything else: can't tell."""
    if answer.status == 200:
        return True
    if answer.status in (301, 302, 303, 307, 308):
        return False
    return None


async def fetch_is_short(fetcher: HttpFetcher, addresses: YouTubeAddresses,
                         video_id: str) -> tuple[bool | None, str | None]:
    """(is a Short, why we can't tell). Never raises for a network fault."""
    try:
        answer = await fetcher.head(addresses.shorts(video_id))
    except FetchError as exc:
        return None, f"HEAD {addresses.shorts(video_id)}: {exc}"
    verdict = parse_shorts_answer(answer)
    if verdict is None:
        return None, f"HEAD {addresses.shorts(video_id)} answered {answer.status}"
    return verdict, None

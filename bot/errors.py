"""One error tree for the whole bot.

At the chat edge a ``UserError`` becomes a kind answer; anything else is a bug
that gets logged and a generic answer (the split discord.py makes between
UserInputError and CommandInvokeError).
"""

from __future__ import annotations


class ShowbotError(Exception):
    """Base of every error showbot raises on purpose."""


class UserError(ShowbotError):
    """The member or moderator asked for something we can't do; say so kindly."""


class PermissionDenied(UserError):
    """A member tried a moderator command."""


class NotFound(UserError):
    """A named thing (source, route, episode) does not exist."""


class AlreadyExists(UserError):
    """A unique name or key is already taken."""


class ConfigError(ShowbotError):
    """The TOML config is invalid. ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key


class StorageError(ShowbotError):
    """An operational storage failure (locked, disk full, read-only, unreachable, corrupt)."""


class ClaimLost(ShowbotError):
    """Work this process had claimed (a poll, a delivery) was taken over
    because its lease ran out; whoever holds it now finishes it."""


class Stale(ShowbotError):
    """A poll's decision was made from a state another writer changed since
    in a way that matters (another source announced, maybe the same
    release): nothing was written; decide again from what is stored now."""


class Busy(UserError):
    """Someone else is already doing this (e.g. a poll of the same source)."""


class SourceError(ShowbotError):
    """A poll failed: network, HTTP status, not a feed, too big, refused address.

    ``retry_after`` is set when the remote told us how long to wait (429/503).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FetchError(SourceError):
    """The bytes could not be fetched."""


class FeedParseError(SourceError):
    """The bytes were fetched but are not a usable feed."""


class DocumentParseError(SourceError):
    """A document an item links to (podcast:chapters JSON, a transcript) was
    fetched but is not usable: malformed, empty, or of an unknown format."""


class DeliveryError(ShowbotError):
    """An adapter could not post an announcement.

    ``permanent`` means retrying cannot help (deleted channel, missing
    permission): the route is marked broken. ``retry_after`` is the platform's
    own hint in seconds (a rate limit: the channel waits, the platform is fine).
    ``maybe_delivered`` means the request may have reached the platform and
    been acted on (a timeout, a dropped connection, a 5xx): before the next
    attempt the platform is asked whether the message is already there.
    ``whole_platform``: the rate limit covers every destination (Discord's
    global limit), so nothing is sent to that platform before ``retry_after``.
    ``gone``: an edit found no message to change (deleted meanwhile): the
    edit is given up, the route stays as it is, nothing is posted instead.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None,
        maybe_delivered: bool = False, whole_platform: bool = False, gone: bool = False,
    ) -> None:
        super().__init__(message)
        self.gone = gone
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        self.whole_platform = whole_platform

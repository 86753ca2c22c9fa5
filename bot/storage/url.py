"""Database URLs: which backend a URL names, and a form safe to show."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from bot.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql", "postgres")


def redact(url: str) -> str:
    """The URL without its password, for logs and ``showbot check``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable database URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


def check_url(url: str, key: str) -> str:
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        raise ConfigError(key, "not a database URL") from None
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigError(key, f"expected a postgresql://host:5432/db URL, got scheme {scheme!r}")
    return url

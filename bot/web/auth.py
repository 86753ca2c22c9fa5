"""Who may see the status page.

- ``SHOWBOT_WEB_TOKEN`` set: a login form; the token is compared in constant
  time; a good one gets a session cookie (HttpOnly, SameSite=Strict, Secure
  behind TLS) that is an expiry and a nonce signed with a key derived from
  the token -- nothing to store, valid across restarts, void as soon as the
  token changes. Failed logins are limited per minute (no sleeping: the
  excess is refused at once).
- no token, bound to a loopback address: served without a login (only this
  machine can reach it).
- no token on any other address: refused, saying why.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections import deque
from datetime import datetime, timedelta

from bot.clock import Clock

SESSION_COOKIE = "showbot_session"
SESSION_S = 12 * 3600
MAX_FAILED_PER_MINUTE = 10


class Mode(enum.StrEnum):
    TOKEN = "token"  # log in with SHOWBOT_WEB_TOKEN
    OPEN = "open"  # no token, loopback bind: anyone who can connect is on this machine
    REFUSED = "refused"  # no token, reachable from elsewhere: no page


def is_loopback(bind: str) -> bool:
    host = bind.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    def __init__(self, token: str | None, bind: str, *, clock: Clock) -> None:
        self._token = token.encode() if token else None
        self._key = hashlib.sha256(b"showbot session key\x00" + self._token).digest() if self._token else b""
        self._clock = clock
        self._failures: deque[datetime] = deque()
        self.mode = Mode.TOKEN if token else Mode.OPEN if is_loopback(bind) else Mode.REFUSED

    def login_allowed(self) -> bool:
        """False while too many wrong tokens came in the last minute."""
        cutoff = self._clock() - timedelta(minutes=1)
        while self._failures and self._failures[0] < cutoff:
            self._failures.popleft()
        return len(self._failures) < MAX_FAILED_PER_MINUTE

    def check_token(self, given: str) -> bool:
        if self._token is None:
            return False
        ok = hmac.compare_digest(given.encode(), self._token)
        if not ok:
            self._failures.append(self._clock())
        return ok

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        expiry = int((self._clock() + timedelta(seconds=SESSION_S)).timestamp())
        body = f"{expiry}.{secrets.token_hex(8)}"
        return f"{body}.{self._mac(body)}"

    def session_ok(self, value: str | None) -> bool:
        if self.mode is Mode.OPEN:
            return True
        if self.mode is Mode.REFUSED or not value:
            return False
        body, _, mac = value.rpartition(".")
        expiry, _, _nonce = body.partition(".")
        if not expiry.isdigit() or not hmac.compare_digest(mac, self._mac(body)):
            return False
        return int(expiry) > self._clock().timestamp()

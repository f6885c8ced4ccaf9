"""Session timers (RFC 4028): what the headers say and who refreshes, sans-IO.

A call's session has an interval (Session-Expires) and a refresher (the UAC or the UAS of
the INVITE that set it). The refresher sends a refresh (UPDATE when the peer allows it, else
re-INVITE) at half the interval; the other side ends the call with BYE when no refresh came
within the interval less min(32, interval/3) seconds (RFC 4028 10). A proposed interval below
our Min-SE is refused with 422 and our Min-SE; a 422 to our INVITE is answered by trying again
with the peer's Min-SE. CoreCall holds a ``SessionTimer`` and arms its timers from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from softphone.sip import Headers, ParseError, Request, Response
from softphone.sip.grammar import decimal

DEFAULT_INTERVAL = 1800  # RFC 4028 4: the recommended Session-Expires
MIN_SE = 90              # RFC 4028 4: the smallest interval allowed, and our default Min-SE


@dataclass(frozen=True)
class SessionTimerSettings:
    """Our wishes: the interval we propose (0: no session timer of our own) and the
    smallest we accept from a peer."""

    interval: int = DEFAULT_INTERVAL
    min_se: int = MIN_SE


@dataclass(frozen=True)
class SessionTimer:
    """A negotiated timer: ``interval`` seconds, refreshed by us when ``we_refresh``."""

    interval: int
    we_refresh: bool

    def refresh_at(self, now: float) -> float:
        return now + self.interval / 2

    def expires_at(self, now: float) -> float:
        """When the session ends without a refresh (RFC 4028 10: the interval less
        min(32, a third of it), so a refresh in flight still counts)."""
        return now + self.interval - min(32.0, self.interval / 3)


def session_expires(message: Request | Response) -> tuple[int, str | None] | None:
    """Session-Expires' delta-seconds and refresher (``uac``/``uas``/None), or None when
    the header is absent; ParseError when it is unusable."""
    value = message.headers.get("Session-Expires")
    if value is None:
        return None
    delta, *params = [part.strip() for part in value.split(";")]
    seconds = decimal(delta)
    if seconds is None or seconds <= 0:
        raise ParseError(f"Session-Expires is not a number of seconds: {value!r}")
    refresher = None
    for param in params:
        name, _, given = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = given.strip().lower()
            if refresher not in ("uac", "uas"):
                raise ParseError(f"Session-Expires refresher must be uac or uas: {value!r}")
    return seconds, refresher


def min_se(message: Request | Response) -> int | None:
    value = message.headers.get("Min-SE")
    return decimal(value.split(";")[0].strip()) if value else None


def supports_timer(message: Request | Response) -> bool:
    return "timer" in header_tokens(message, "Supported") \
        or "timer" in header_tokens(message, "Require")


def allows_update(message: Request | Response) -> bool:
    return "update" in header_tokens(message, "Allow")


def header_tokens(message: Request | Response, name: str) -> set[str]:
    """The lower-cased tokens of a comma-separated header (Supported, Require, Allow)."""
    return {token.strip().lower() for value in message.headers.get_all(name)
            for token in value.split(",") if token.strip()}


def offer_headers(settings: SessionTimerSettings, interval: int | None = None,
                  refresher: str | None = None) -> Headers:
    """What an INVITE (or a refresh) of ours says: the interval (``interval`` when a peer's
    422 or the session fixed it), our Min-SE, and that we support timers."""
    chosen = interval or settings.interval
    value = f"{chosen};refresher={refresher}" if refresher else str(chosen)
    return Headers([("Session-Expires", value),
                    ("Min-SE", str(min(settings.min_se, chosen)))])


def too_brief(request: Request, settings: SessionTimerSettings) -> int | None:
    """Our Min-SE when ``request`` proposes an interval below it (422 then, RFC 4028 9)."""
    try:
        proposed = session_expires(request)
    except ParseError:
        return None  # unusable: treated as absent
    if proposed is not None and proposed[0] < settings.min_se:
        return settings.min_se
    return None


def as_uas(request: Request,
           settings: SessionTimerSettings) -> tuple[SessionTimer, str] | None:
    """The timer a 2xx of ours to ``request`` sets, and its Session-Expires value; None
    when there is none (the request proposed none and we propose none either).

    RFC 4028 9: the request's interval stands (it passed our Min-SE); its refresher stands;
    when it names none, the UAC refreshes if it supports timers, else we do. A request
    without Session-Expires gets ours, refreshed by us."""
    try:
        proposed = session_expires(request)
    except ParseError:
        proposed = None
    if proposed is None:
        if not settings.interval:
            return None
        interval, refresher = settings.interval, "uas"
    else:
        interval, refresher = proposed[0], proposed[1] or (
            "uac" if supports_timer(request) else "uas")
    return SessionTimer(interval, refresher == "uas"), f"{interval};refresher={refresher}"


def as_uac(response: Response) -> SessionTimer | None:
    """The timer the 2xx to our INVITE (or refresh) sets; None when it has no
    Session-Expires (RFC 4028 7.2: then there is no session expiration)."""
    try:
        granted = session_expires(response)
    except ParseError:
        return None
    if granted is None:
        return None
    interval, refresher = granted
    return SessionTimer(interval, refresher != "uas")  # uac, or unnamed: ours to refresh

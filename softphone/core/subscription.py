"""Our subscriptions (RFC 6665), inside the core: message-summary for voicemail waiting
indication (RFC 3842), the one event package a softphone subscribes to.

SUBSCRIBE to our own address of record (the voicemail server, or a PBX's presence server,
serves it), challenges answered by the core's exchanges; the 2xx's To tag makes the
subscription's dialog, and each NOTIFY in it (one comes at once, RFC 6665 4.2.1) carries
the mailbox's summary, which becomes an ``mwi`` event. A NOTIFY may overtake the 2xx: its
tags make the dialog then. The subscription is refreshed before the granted Expires runs
out; a refresh refused with 481, or a NOTIFY saying ``terminated``, starts a fresh one (after
back-off, unless the server said it will never serve it); Expires: 0 ends it on close.
Unsolicited NOTIFYs (no subscription, as many PBXs send them) are taken too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from softphone.core.events import Completed
from softphone.events import Mwi
from softphone.sip import ParseError, Request, Response, SipUri
from softphone.sip.builder import make_response, new_call_id, new_tag
from softphone.sip.dialog import Dialog
from softphone.sip.grammar import decimal
from softphone.sip.headers import Address, parse_expires
from softphone.sip.transaction import TransactionKey

if TYPE_CHECKING:
    from softphone.core.agent import UserAgentCore

log = logging.getLogger("softphone.subscription")
MESSAGE_SUMMARY = "message-summary"
SUMMARY_TYPE = "application/simple-message-summary"
RETRY_AFTER = 30.0        # a failed or terminated subscription is tried again after this
REFRESH_MARGIN = 0.9      # refreshed at this fraction of the granted time
FINAL_REASONS = ("rejected", "noresource", "invariant")  # RFC 6665 4.1.3: do not retry


@dataclass(frozen=True)
class MessageSummary:
    """A simple-message-summary body (RFC 3842 5.2): whether messages wait, for which
    account, and the voice-message counts new/old (urgent ones in brackets)."""

    waiting: bool
    account: str | None
    new: int
    old: int
    urgent_new: int
    urgent_old: int

    @classmethod
    def parse(cls, body: bytes) -> MessageSummary:
        waiting, account = False, None
        counts = [0, 0, 0, 0]
        for line in body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "messages-waiting":
                waiting = value.lower() == "yes"
            elif name == "message-account":
                account = value or None
            elif name == "voice-message":
                counts = _counts(value)
        return cls(waiting, account, *counts)


def _counts(value: str) -> list[int]:
    """``2/8 (0/2)``: new/old, and urgent new/old in brackets (optional)."""
    main, _, urgent = value.partition("(")
    numbers = []
    for part in (main, urgent.rstrip(") ")):
        new, _, old = part.strip().partition("/")
        numbers += [decimal(new.strip()) or 0, decimal(old.strip()) or 0]
    return numbers


def mwi_event(request: Request) -> Mwi:
    summary = MessageSummary.parse(request.body)
    return Mwi(summary.waiting, summary.new, summary.old, summary.urgent_new,
               summary.urgent_old, summary.account)


def is_message_summary(request: Request) -> bool:
    event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
    return event == MESSAGE_SUMMARY


class CoreSubscription:
    """One message-summary subscription of ours, from SUBSCRIBE to Expires: 0."""

    def __init__(self, core: UserAgentCore, target: SipUri, expires: int) -> None:
        self.core = core
        self.target = target
        self.expires = expires
        self.call_id = new_call_id(core.advertised_host())
        self.from_tag = new_tag()
        self.cseq = 0
        self.dialog: Dialog | None = None
        self.active = False
        self.ending = False
        self._subscribe: Request | None = None
        self._request: int | None = None  # the API request waiting for the first answer

    def subscribe(self, request_id: int | None, now: float, expires: int | None = None) -> None:
        """SUBSCRIBE (or refresh, or end with ``expires`` 0)."""
        self._request = request_id
        seconds = self.expires if expires is None else expires
        if self.dialog is not None:
            request = self.dialog.create_request("SUBSCRIBE")
        else:
            self.cseq += 1
            request = self.core.new_request("SUBSCRIBE", self.target,
                                            to=Address(uri=self.target), call_id=self.call_id,
                                            from_tag=self.from_tag, cseq=self.cseq)
            request.headers.add("Contact", self.core.contact_text())
        request.headers.add("Event", MESSAGE_SUMMARY)
        request.headers.add("Accept", SUMMARY_TYPE)
        request.headers.add("Expires", str(seconds))
        self._subscribe = request
        hop = self.dialog.next_hop if self.dialog is not None else self.core.route_for(
            self.target)
        self.core.exchange(request, hop, self._on_final, None, now)

    def unsubscribe(self, request_id: int | None, now: float) -> None:
        self.ending = True
        self.core.timers.cancel_all(self, ("refresh",))
        if not self.active and self.dialog is None:
            self._finish(request_id, 200, "Not subscribed")
            return
        self.subscribe(request_id, now, expires=0)

    def _on_final(self, response: Response) -> None:
        now = self.core.now
        if self.ending:
            self._finish(self._request, response.status, response.reason)
            return
        if 200 <= response.status < 300:
            if self.dialog is None and self._subscribe is not None \
                    and response.to_address.tag:
                self._bind(Dialog.from_uac(self._subscribe, response))
            self.active = True
            granted = _granted(response, self.expires)
            self.core.timers.arm(self, "refresh", now + max(1.0, granted * REFRESH_MARGIN))
        else:
            log.info("subscription to %s: %d %s", self.target, response.status,
                     response.reason)
            self.active = False
            if response.status == 481:  # the notifier forgot us: a fresh subscription
                self._forget_dialog()
            self.core.timers.arm(self, "refresh", now + RETRY_AFTER)
        request, self._request = self._request, None
        if request is not None:
            self.core.emit(Completed(request, response.status, response.reason, response))

    def _finish(self, request: int | None, status: int, reason: str) -> None:
        self._forget_dialog()
        self.active = False
        self.core.forget_subscription(self)
        if request is not None:
            self.core.emit(Completed(request, status, reason))

    def _bind(self, dialog: Dialog) -> None:
        self.dialog = dialog
        self.core.bind_subscription(self, dialog.key)

    def _forget_dialog(self) -> None:
        """The dialog is over: the next SUBSCRIBE starts a new one (a new From tag)."""
        if self.dialog is not None:
            self.core.unbind_subscription(self.dialog.key)
            self.from_tag = new_tag()
        self.dialog = None

    def on_notify(self, request: Request, key: TransactionKey, now: float) -> None:
        """A NOTIFY of this subscription: 200, the summary as an ``mwi`` event, and a
        fresh subscription when it says the old one is over."""
        if self.dialog is None and self._subscribe is not None:  # it overtook the 2xx
            self._bind(_dialog_from_notify(self._subscribe, request))
        elif self.dialog is not None:
            self.dialog.accept_remote_request(request)
        self.core.respond(key, make_response(request, 200))
        if request.body:
            self.core.emit(mwi_event(request))
        state, _, params = (request.headers.get("Subscription-State") or "").partition(";")
        if state.strip().lower() == "terminated" and not self.ending:
            reason = _param(params, "reason")
            self.active = False
            self._forget_dialog()
            self.core.timers.cancel_all(self, ("refresh",))
            if reason not in FINAL_REASONS:
                retry = decimal(_param(params, "retry-after") or "")
                self.core.timers.arm(self, "refresh", now + (retry or RETRY_AFTER))

    def on_timer(self, name: str, now: float) -> None:
        if name == "refresh" and not self.ending:
            self.subscribe(None, now)


def _granted(response: Response, asked: int) -> int:
    value = response.headers.get("Expires")
    try:
        return parse_expires(value) if value else asked
    except ParseError:
        return asked


def _param(params: str, wanted: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == wanted:
            return value.strip().lower()
    return None


def _dialog_from_notify(subscribe: Request, notify: Request) -> Dialog:
    """The subscription's dialog made by its first NOTIFY (RFC 6665 4.1.2.4)."""
    remote = notify.from_address
    local = subscribe.from_address
    target = notify.contacts[0].sip_uri if notify.contacts else subscribe.uri
    assert isinstance(target, SipUri)
    return Dialog(call_id=subscribe.call_id, local_tag=local.tag or "",
                  remote_tag=remote.tag or "",
                  local_address=Address(uri=local.uri, display_name=local.display_name),
                  remote_address=Address(uri=remote.uri, display_name=remote.display_name),
                  remote_target=target, route_set=list(notify.record_routes),
                  local_contact=subscribe.contacts[0], local_seq=subscribe.cseq.number,
                  remote_seq=notify.cseq.number)

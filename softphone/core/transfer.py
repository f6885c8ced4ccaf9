"""Call transfer, sans-IO: what REFER (RFC 3515), Replaces (RFC 3891), Referred-By (RFC
3892) and norefersub (RFC 4488) say, and how their values are read and written.

Three parties. The *transferor* asks the *transferee*, inside their call, to call the
*target*: a REFER whose Refer-To names the target (blind transfer), with a Replaces header
inside that URI when the transferor already talks to the target (attended transfer: the
target's call with the transferor is then replaced by the transferee's). The transferee
accepts (202), calls the target with Referred-By, and reports how that call goes in NOTIFYs
of the implicit ``refer`` subscription, each body a message/sipfrag status line; the last
says ``Subscription-State: terminated``. With ``Refer-Sub: false`` (RFC 4488) the
transferor asks for no NOTIFYs at all. CoreCall does the sending; this module the values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from softphone.sip import ParseError, Request
from softphone.sip.dialog import Dialog
from softphone.sip.headers import Address, parse_address
from softphone.sip.uri import SipUri

SIPFRAG = "message/sipfrag;version=2.0"
REFER_EVENT = "refer"
SUBSCRIPTION_SECONDS = 60  # how long our implicit subscription is said to last


@dataclass(frozen=True)
class Replaces:
    """Which dialog an INVITE replaces (RFC 3891): its Call-ID and its tags as the
    *recipient* of the INVITE names them (``to_tag`` is the recipient's own tag)."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, value: str) -> Replaces:
        call_id, *params = [part.strip() for part in value.split(";")]
        named: dict[str, str] = {}
        flags: set[str] = set()
        for param in params:
            name, equals, given = param.partition("=")
            if equals:
                named[name.strip().lower()] = given.strip()
            else:
                flags.add(name.strip().lower())
        if not call_id or "to-tag" not in named or "from-tag" not in named:
            raise ParseError(f"Replaces needs a Call-ID, to-tag and from-tag: {value!r}")
        return cls(call_id, named["to-tag"], named["from-tag"], "early-only" in flags)

    @classmethod
    def of(cls, dialog: Dialog) -> Replaces:
        """The Replaces that makes the peer of ``dialog`` give it up: its own tag (our
        remote tag) is the to-tag, ours the from-tag."""
        return cls(dialog.call_id, dialog.remote_tag, dialog.local_tag)

    def __str__(self) -> str:
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}" + (
            ";early-only" if self.early_only else "")


def refer_to(target: SipUri, replaces: Replaces | None = None) -> str:
    """The Refer-To value: the target, with the Replaces header in its URI when attended."""
    if replaces is not None:
        target = dataclasses.replace(target, headers=(("Replaces", str(replaces)),))
    return f"<{target}>"


@dataclass(frozen=True)
class ReferRequest:
    """What a REFER asks: the target (a SIP URI; its embedded headers removed), the
    Replaces to put in the INVITE, who referred, and whether NOTIFYs are wanted."""

    target: SipUri
    replaces: Replaces | None
    referred_by: str | None
    wants_notify: bool

    @classmethod
    def parse(cls, request: Request) -> ReferRequest:
        value = request.headers.get("Refer-To")
        if value is None:
            raise ParseError("REFER without Refer-To")
        address = parse_address(value)
        target = address.uri
        if not isinstance(target, SipUri):
            raise ParseError(f"Refer-To is not a SIP URI: {value!r}")
        replaces = None
        for name, given in target.headers:
            if name.lower() == "replaces":
                replaces = Replaces.parse(given)
        sub = (request.headers.get("Refer-Sub") or "true").strip().lower()
        return cls(dataclasses.replace(target, headers=()), replaces,
                   request.headers.get("Referred-By"), sub != "false")


def sipfrag(status: int, reason: str) -> bytes:
    """A NOTIFY's body: the status line of the transferee's call to the target."""
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def read_sipfrag(body: bytes) -> tuple[int, str] | None:
    """The status and reason of a message/sipfrag status line; None when it has none."""
    line = body.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.upper().startswith("SIP/") or len(code) != 3 or not code.isdigit():
        return None
    return int(code), reason.strip()


def is_terminated(request: Request) -> bool:
    """Whether a NOTIFY ends its subscription (the transfer's last word)."""
    state = request.headers.get("Subscription-State") or ""
    return state.split(";")[0].strip().lower() == "terminated"


def referred_by(local: Address) -> str:
    """The Referred-By of our REFER: our address of record (RFC 3892)."""
    return f"<{local.uri}>"

"""RFC 3261 section 25 grammar pieces shared by the parser, header views and auth.

Each piece is a regex fragment named after its ABNF rule; values reach these patterns already
unfolded (a folded line is joined with one space), so LWS here is plain ``[ \\t]*``.
"""

from __future__ import annotations

import re

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE; quoted-pair never escapes CR or LF.
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
# word, as in Call-ID = word [ "@" word ]
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
LWS = r"[ \t]*"
# gen-value = token / host / quoted-string; host may be an IPv6 reference or, in Via
# received, a bare IPv6 address (RFC 5118 4.5), so ':' and brackets are let in.
GEN_VALUE = rf"(?:{QUOTED_STRING}|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.!%*_+`'~:]+)"

TOKEN_RE = re.compile(TOKEN)
WORD_RE = re.compile(rf"{WORD}(?:@{WORD})?")
# One header parameter, with the LWS the grammar allows around ';' and '='.
PARAM_RE = re.compile(rf"{LWS};{LWS}({TOKEN})(?:{LWS}={LWS}({GEN_VALUE}))?{LWS}")


def unquote(text: str) -> str:
    """The content of a quoted-string, quoted-pairs resolved."""
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)


def quote(text: str) -> str:
    """A quoted-string holding ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decimal(text: str | None) -> int | None:
    """A number written in ASCII digits (RFC 5234 DIGIT), else None. ``str.isdigit`` alone
    admits superscripts and other scripts' digits that ``int`` refuses or reads differently,
    which a peer can put in any numeric field."""
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return int(text)

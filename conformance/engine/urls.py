"""Which task ids a real appliance's HTTP layer may refuse before the API sees them.

SDDC Manager runs on Tomcat + Spring Security (StrictHttpFirewall) behind nginx. Those layers
answer 400 (an HTML page) for some paths and 414 for very long ones; the cancel operation never
sees the request. The suite therefore splits ids in two classes, by one exact rule on the id and
on the path segment as it goes on the wire (`encoded`):

An id is URL-HOSTILE when any of these holds, else WELL-FORMED:

1. the id contains ``/``, ``\\``, ``%`` or ``;`` (on the wire: %2F, %5C, %25, %3B);
2. the id contains a control character: C0 (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F);
3. the id is a dot segment, ``.`` or ``..``;
4. the wire segment holds a malformed escape (``%`` not followed by two hex digits), an encoded
   period (%2E), a raw byte that a path may not carry (``/``, ``\\``, ``;``, a control byte), or
   its percent-decoding is not valid UTF-8 (overlong forms such as %C0%AF);
5. the wire segment is longer than `MAX_WELL_FORMED_BYTES` bytes.

Everything else (percent-encoded Unicode, spaces, ``!$&'()*+,=:@~_-.`` inside an id that is not
a dot segment, UUID spellings) is well-formed and must be answered by the API: 404 + Error.
"""

from __future__ import annotations

import re
from typing import Literal

IdClass = Literal["well-formed", "url-hostile"]
WELL_FORMED: IdClass = "well-formed"
URL_HOSTILE: IdClass = "url-hostile"

# Tomcat's default request-line cap is 8 KB and nginx's large_client_header_buffers 8 KB; a
# 2 KB id is far from both, so a 414 below this bound is the server's doing, not the front's.
MAX_WELL_FORMED_BYTES = 2048

_HOSTILE_CHARS = re.compile(r"[/\\%;\x00-\x1f\x7f-\x9f]")
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_PERIOD = re.compile(r"%2[Ee]")
_RAW_FORBIDDEN = re.compile(r"[/\\;\x00-\x20\x7f-\x9f]")
_ESCAPES = re.compile(r"((?:%[0-9A-Fa-f]{2})+)")


def url_hostility(raw_id: str, encoded: str) -> str | None:
    """Why the HTTP layer may refuse this id (one of the rule's clauses), or None: well-formed."""
    if raw_id in (".", ".."):
        return "dot segment"
    match = _HOSTILE_CHARS.search(raw_id)
    if match:
        char = match.group()
        return "control character" if char not in "/\\%;" else f"{char!r} in the id"
    if len(encoded.encode("utf-8", "surrogatepass")) > MAX_WELL_FORMED_BYTES:
        return f"longer than {MAX_WELL_FORMED_BYTES} encoded bytes"
    if _MALFORMED_ESCAPE.search(encoded):
        return "malformed escape"
    if _ENCODED_PERIOD.search(encoded):
        return "encoded period"
    if _RAW_FORBIDDEN.search(encoded):
        return "raw character a path may not carry"
    for run in _ESCAPES.findall(encoded):
        try:
            bytes.fromhex(run.replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            return "escapes that are not UTF-8 (overlong or cut)"
    return None


def url_class(raw_id: str, encoded: str) -> IdClass:
    """`url-hostile` when the HTTP layer in front of the API may refuse the id, else `well-formed`."""
    return URL_HOSTILE if url_hostility(raw_id, encoded) is not None else WELL_FORMED

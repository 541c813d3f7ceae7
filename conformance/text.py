"""Text that came from a target or a report file, made safe to show: one helper, used everywhere.

Every byte a target sends (reason phrases, bodies, URLs echoed back) and every string read from a
report file is hostile until cleaned here, before it reaches a terminal, summary.md, JUnit text
or the HTML report.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# C0 controls (but tab and newline where kept), DEL, C1 controls, and the lone ESC that starts
# CSI/OSC sequences: a terminal acts on all of them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_NEWLINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Whole escape sequences first, so their printable tails ("[2J", "]0;title") go too.
_ESCAPE_SEQUENCE = re.compile(
    # ESC CSI, ESC OSC, then any other ESC sequence (nF intermediates, Fp, Fe, Fs such as ESC c: reset)
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])"
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # 8-bit OSC
)
# Unicode bidi controls can reorder what a reader sees on a line.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str, *, keep_newlines: bool = True) -> str:
    """text without terminal escape sequences, C0/C1 controls and bidi overrides."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _BIDI.sub("", text)
    pattern = _CONTROLS if keep_newlines else _CONTROLS_AND_NEWLINES
    return pattern.sub("", text)


def clean_line(text: str) -> str:
    """One line for a terminal: controls stripped, newlines and tabs folded into spaces."""
    return strip_controls(text.replace("\r\n", " ").replace("\n", " ").replace("\t", " "), keep_newlines=False)


def public_url(url: str) -> str:
    """The URL without user:password@ -- a report must never carry credentials given in a URL."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

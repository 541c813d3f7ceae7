"""Id identity: which ids a server may treat as a task's id, and near-miss ids that it must not.

The rule (docs/DESIGN.md#id-identity): an id that differs from a task's id must not read, cancel
or otherwise reach that task, except where a standard makes the two ids equal. Two equalities are
tolerated: the hexadecimal case of a UUID (RFC 9562, section 4: UUIDs are case-insensitive on
input) and percent-encoding (RFC 3986, section 6.2.2.2: `%61` and `a` are the same path, decoded
ONCE, by the server or by the client). No standard makes an opaque id equal to its trimmed,
padded, case-folded, accent-folded, Unicode-normalised, numerically parsed, truncated, prefix,
wildcard, twice-decoded or `+`-decoded spelling, or to it with a `;parameter` or a NUL and junk
after it; real stacks apply each of these (the `source` of each family says where).

Each `Family` derives near-miss ids of a task id from one such equivalence, for the kinds of id
it applies to (`kind_of`: a UUID, an integer, any other string). A near-miss id that answers
other than 404, or changes its task, shows that the target resolved it to the task; the failure
names the family by its `description` ("resolved after Unicode compatibility normalisation
(NFKC)"). The one tolerated family (`uuid-hex-case`) is sent to check that such an id answers as
the task's own id did, or 404.

The API (kept small and stable; the request planner depends on it):

- `FAMILIES`: every family, in priority order: the equivalences the most stacks apply come
  first (string trimming and SQL collations before Unicode forms and C strings), the tolerated
  family last.
- `near_misses(task_id, limit=None)`: the near-miss ids of one task id, as `NearMissId`s, round
  by round in priority order (the first id of each family that applies, then the second of
  each, ...), so that any `limit` covers as many families as it can. No id equals the task's;
  an id two families derive is one id naming both.
- `request_cost(ids)`: the requests a run spends on those ids of one task: one DELETE each, plus
  one GET of the task after the ids that must name no task and one after the tolerated ones.
  The task's own cancel and the read that judges it are not counted: every known task gets them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

IdKind = Literal["uuid", "integer", "string"]
KINDS: tuple[IdKind, ...] = ("uuid", "integer", "string")
ALL_KINDS: frozenset[IdKind] = frozenset(KINDS)

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_INTEGER = re.compile(r"[0-9]+")
# Combining marks tried, in order, to accent a letter: the first that composes to one code point.
_ACCENTS = ("\u0301", "\u0307", "\u0300", "\u0327", "\u030c", "\u0308")
# Zero width space, byte order mark (zero width no-break space), soft hyphen: default-ignorable.
ZWSP, BOM, SOFT_HYPHEN = "\u200b", "\ufeff", "\u00ad"


def kind_of(task_id: str) -> IdKind:
    """The kind of a task id: a UUID (any hex case), an integer (ASCII digits), or any other string."""
    if _UUID.fullmatch(task_id):
        return "uuid"
    if _INTEGER.fullmatch(task_id):
        return "integer"
    return "string"


@dataclass(frozen=True)
class Family:
    """One equivalence a real stack applies to ids, and the near-miss ids it makes of a task id."""

    name: str
    source: str  # where real stacks apply it
    kinds: frozenset[IdKind]
    description: str  # how a failure names it: "resolved after ..."
    derive: Callable[[str], tuple[str, ...]] = field(repr=False, compare=False)
    # A standard makes the ids equal: the id may name the task (answer as its own id did).
    tolerated: bool = False
    # The path segment for an id, when the standard percent-encoding would hide what the family needs.
    wire: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    def ids(self, task_id: str) -> tuple[str, ...]:
        """This family's near-miss ids of `task_id` (none when it does not apply to its kind)."""
        if not task_id or kind_of(task_id) not in self.kinds:
            return ()
        return tuple(dict.fromkeys(i for i in self.derive(task_id) if i and i != task_id))


@dataclass(frozen=True)
class NearMissId:
    """A near-miss id: `text` is the id a server decodes once, `wire` its path segment."""

    text: str
    wire: str
    families: tuple[Family, ...]  # every family that derives it, highest priority first

    @property
    def tolerated(self) -> bool:
        # Never fail a correct server: an id a standard makes equal may name the task.
        return any(f.tolerated for f in self.families)

    @property
    def names(self) -> str:
        return "/".join(f.name for f in self.families)

    @property
    def description(self) -> str:
        return " or ".join(f"{f.description} [{f.name}]" for f in self.families)


def encode(text: str) -> str:
    """The standard path segment of an id: every character but the unreserved ones percent-encoded."""
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="")


# -- derivations --------------------------------------------------------------------------------

def _outside_uuids(task_id: str) -> list[bool]:
    """Per character: whether it lies outside every embedded UUID (whose hex case is tolerated)."""
    outside = [True] * len(task_id)
    for match in _UUID.finditer(task_id):
        for i in range(match.start(), match.end()):
            outside[i] = False
    return outside


def _case_flipped(task_id: str) -> tuple[str, ...]:
    outside = _outside_uuids(task_id)
    return ("".join(c.swapcase() if keep else c for c, keep in zip(task_id, outside, strict=True)),)


def _accented(letter: str) -> str | None:
    # Precomposed, as typed: the id keeps its length and its NFC form.
    for mark in _ACCENTS:
        composed = unicodedata.normalize("NFC", letter + mark)
        if len(composed) == 1:
            return composed
    return None


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _accent_folded(task_id: str) -> tuple[str, ...]:
    # An id with accents loses them; an id without gets one on its first letter that takes one.
    stripped = _strip_marks(task_id)
    if stripped != task_id:
        return (stripped,)
    for i, c in enumerate(task_id):
        if c.isalpha():
            accented = _accented(c)
            if accented is not None:
                return (task_id[:i] + accented + task_id[i + 1:],)
    return ()


def _fullwidth(task_id: str) -> tuple[str, ...]:
    # NFKC maps the fullwidth forms U+FF01-U+FF5E back to ASCII U+0021-U+007E.
    for i, c in enumerate(task_id):
        if c.isascii() and c.isalnum():
            return (task_id[:i] + chr(ord(c) + 0xFEE0) + task_id[i + 1:],)
    return ()


def _canonical_forms(task_id: str) -> tuple[str, ...]:
    return tuple(unicodedata.normalize(form, task_id) for form in ("NFD", "NFC"))


def _percent_encoded_first(task_id: str) -> tuple[str, ...]:
    # Its one decoding is "%36..." (not the id); a second decoding gives the id.
    return ("".join(f"%{b:02X}" for b in task_id[0].encode("utf-8")) + task_id[1:],)


def _with_invisible(task_id: str) -> tuple[str, ...]:
    head, tail = task_id[:1], task_id[1:]
    return (head + ZWSP + tail, BOM + task_id, head + SOFT_HYPHEN + tail)


def _numeric(task_id: str) -> tuple[str, ...]:
    return ("0" + task_id, "+" + task_id, task_id + ".0", task_id + "e0")


def _truncated(task_id: str) -> tuple[str, ...]:
    # One character past the id: a 37th character cannot make another UUID; for integers and
    # other strings a digit or letter might name a real task ("task-1" + "0"), "~" will not.
    return (task_id + ("0" if kind_of(task_id) == "uuid" else "~"),)


def _like(task_id: str) -> tuple[str, ...]:
    # The first character replaced, not the last: "_042" matches far fewer ids than "104_".
    return ("_" + task_id[1:], "%" + task_id[1:]) if len(task_id) > 1 else ()


def _plus_wire(text: str) -> str:
    # The "+" must reach the server as it is: percent-encoded (%2B) it would decode to "+".
    return quote(text, safe="+")


FAMILIES: tuple[Family, ...] = (
    Family("whitespace-trim", "String.trim() in the application (Java, JavaScript), SQL TRIM()",
           ALL_KINDS, "resolved after trimming surrounding whitespace",
           lambda t: (" " + t, t + "\t")),
    Family("pad-space", "PAD SPACE collations: MySQL before the 0900 collations, SQL Server, CHAR(n) columns",
           ALL_KINDS, "resolved by a comparison that ignores trailing spaces (PAD SPACE collation)",
           lambda t: (t + " ",)),
    Family("case-insensitive", "case-insensitive collations (MySQL _ci, SQL Server CI_AS defaults), "
           "equalsIgnoreCase; never a UUID's hex digits",
           frozenset({"string"}), "resolved by a case-insensitive comparison (collation)", _case_flipped),
    Family("prefix-match", "LIKE 'id%' or startsWith() lookups, short-id resolution",
           frozenset({"uuid", "string"}), "resolved as a prefix of the task's id",
           # Not integers: a shorter number is most likely another task's id.
           lambda t: (t[:-1],) if len(t) > 1 else ()),
    Family("truncation", "a lookup that cuts the id to its column's width (MySQL outside strict mode, "
           "SQL Server parameters typed with the column's length)",
           ALL_KINDS, "resolved after cutting characters beyond the id's length (column width)", _truncated),
    Family("like-wildcard", "ids passed to SQL LIKE unescaped (CWE-155)",
           ALL_KINDS, "resolved by SQL LIKE, with _ and % as wildcards", _like),
    Family("numeric-parse", "integer columns compared with strings (MySQL converts '1.0', '1e0', '+1', "
           "'01' to 1), Long.parseLong, Number()",
           frozenset({"integer"}), "resolved after parsing the id as a number", _numeric),
    Family("double-decode", "a proxy or gateway that percent-decodes the path before the application "
           "decodes it again (CWE-174)",
           ALL_KINDS, "resolved after percent-decoding twice", _percent_encoded_first),
    Family("path-parameter", "servlet path parameters (Tomcat, Spring's UrlPathHelper strip ';jsessionid=...')",
           ALL_KINDS, "resolved after stripping a ;path-parameter", lambda t: (t + ";jsessionid=0",)),
    Family("plus-as-space", "HTML form decoding applied to a path (java.net.URLDecoder, PHP urldecode)",
           frozenset({"string"}), "resolved after reading + as a space (form decoding)",
           lambda t: (t.replace(" ", "+"),) if " " in t else (), wire=_plus_wire),
    Family("accent-insensitive", "accent-insensitive collations (MySQL utf8mb4_0900_ai_ci, SQL Server _AI)",
           frozenset({"uuid", "string"}), "resolved by an accent-insensitive comparison (collation)",
           _accent_folded),
    Family("invisible-characters", "collations and sanitisers that ignore default-ignorable code points "
           "(ICU, MySQL 0900 collations, NFKC_Casefold)",
           ALL_KINDS, "resolved after dropping invisible characters (zero width space, BOM, soft hyphen)",
           _with_invisible),
    Family("nfkc", "Unicode compatibility normalisation (NFKC: Java Normalizer, identifier folding); "
           "width-insensitive collations",
           ALL_KINDS, "resolved after Unicode compatibility normalisation (NFKC)", _fullwidth),
    Family("nfc-nfd", "Unicode canonical equivalence (NFC/NFD: macOS file names, ICU collations)",
           frozenset({"string"}), "resolved after Unicode canonical normalisation (NFC/NFD)", _canonical_forms),
    Family("nul-truncation", "C strings: a NUL ends the id in C, JNI or a native driver (CWE-158)",
           ALL_KINDS, "resolved after cutting the id at a NUL character", lambda t: (t + "\x00x",)),
    Family("uuid-hex-case", "RFC 9562, section 4: UUIDs are case-insensitive on input",
           frozenset({"uuid"}), "resolved with the UUID's hex digits in another case (an equality RFC 9562 grants)",
           lambda t: (t.swapcase(),), tolerated=True),
)

_BY_NAME = {f.name: f for f in FAMILIES}


def family(name: str) -> Family:
    """The family called `name` (KeyError for an unknown one)."""
    return _BY_NAME[name]


def applicable(kind: IdKind) -> tuple[Family, ...]:
    """The families that apply to ids of `kind`, in priority order."""
    return tuple(f for f in FAMILIES if kind in f.kinds)


def near_misses(task_id: str, limit: int | None = None, *,
                families: Iterable[Family] = FAMILIES) -> list[NearMissId]:
    """Near-miss ids of `task_id`, round by round in priority order, at most `limit` of them."""
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    per_family = [(f, f.ids(task_id)) for f in families]
    merged: dict[str, tuple[str, list[Family]]] = {}
    for round_ in range(max((len(ids) for _, ids in per_family), default=0)):
        for fam, ids in per_family:
            if round_ >= len(ids):
                continue
            text = ids[round_]
            wire = fam.wire(text) if fam.wire is not None else encode(text)
            if wire in merged:
                merged[wire][1].append(fam)
            else:
                merged[wire] = (text, [fam])
    rank = {f.name: i for i, f in enumerate(FAMILIES)}
    out = [NearMissId(text, wire, tuple(sorted(fams, key=lambda f: rank.get(f.name, len(rank)))))
           for wire, (text, fams) in merged.items()]
    return out if limit is None else out[:limit]


def request_cost(ids: Sequence[NearMissId]) -> int:
    """Requests spent on these near-miss ids of one task: a DELETE each and a GET per group."""
    groups = {i.tolerated for i in ids}
    return len(ids) + len(groups)

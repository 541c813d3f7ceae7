"""Generated cases: the ids the suite sends to the cancel operation.

Schemathesis generates `id` values from the fragment's parameter schema; they are mixed with
shapes that matter for task ids (UUIDs, long values, reserved and percent-encoded characters)
and with known tasks that must refuse a cancel. Generated ids never name an existing task.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from conformance import identity
from conformance.spec import Fragment, load_fragment
from conformance.tasks import encode_id

if TYPE_CHECKING:
    from hypothesis import strategies as st

# Long ids stay under 4 KB of URL: servers cap request lines at 8 KB (Tomcat, uvicorn), and a
# 414 for a multi-kilobyte id says nothing about the cancel operation.
MAX_LONG_ID = 2048
RESERVED = ":/?#[]@!$&'()*+,;=%. ~"
PERCENT_LITERALS = ("%", "%2F", "%252F", "%00", "%2e%2e", "%zz", "%u0041", "%E2%82%AC", "..%2F..")


@dataclass(frozen=True)
class Probe:
    """One id to send: `encoded` is the path segment as it goes on the wire."""

    encoded: str
    origin: str
    # Set for ids from the task pool: the status the task is known to have.
    known_status: str | None = None

    @property
    def raw(self) -> str:
        return unquote(self.encoded)


@cache
def _schemathesis_operation(fragment: Fragment) -> Any:
    # Imported here: loading Schemathesis and its OpenAPI support costs about 0.6 s, which a run
    # that draws its ids in a child process (engine.draws) never spends in its own process.
    import schemathesis

    # The base URL is never used to send: the suite's Target does that.
    config = schemathesis.Config.from_dict({"base-url": "http://127.0.0.1", "generation": {"database": "none"}})
    # The contract's normalised document, not the file: a --spec document may be a whole vendor
    # API (slow to load) whose operation was renamed to the `{id}` template the suite fills.
    schema = schemathesis.openapi.from_dict(fragment.document, config=config)
    return schema[fragment.path_template][fragment.method]


def _from_schemathesis(fragment: Fragment) -> st.SearchStrategy[Probe]:
    def to_probe(case: Any) -> Probe:
        value = str(case.path_parameters["id"])
        # Schemathesis percent-encodes generated values, except dot segments.
        return Probe(encode_id(value) if value in (".", "..") else value, "schemathesis")

    return _schemathesis_operation(fragment).as_strategy().map(to_probe)


def _shaped() -> list[st.SearchStrategy[Probe]]:
    from hypothesis import strategies as st

    def probe(origin: str) -> Any:
        return lambda raw: Probe(encode_id(raw), origin)

    uuid_like = st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
    )
    # The cap counts encoded bytes: "é" goes on the wire as six.
    long_ids = st.sampled_from([*string.ascii_letters[:6], "-", "é", "0"]).flatmap(
        lambda ch: st.integers(256 // len(encode_id(ch)), MAX_LONG_ID // len(encode_id(ch))).map(lambda n: ch * n)
    )
    return [
        uuid_like.map(probe("uuid-shaped")),
        long_ids.map(probe("long")),
        st.text(alphabet=RESERVED, min_size=1, max_size=16).map(probe("reserved characters")),
        st.sampled_from(PERCENT_LITERALS).map(probe("percent-encoded")),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12).map(
            probe("unicode")
        ),
    ]


def probes(
    known_tasks: Sequence[tuple[str, str]] = (),
    existing_ids: Collection[str] = (),
    fragment: Fragment | None = None,
) -> st.SearchStrategy[Probe]:
    """Ids to cancel: generated ones (never an existing task) mixed with refusable known tasks."""
    from hypothesis import strategies as st

    fragment = fragment or load_fragment()
    existing = frozenset(existing_ids)
    generated = st.one_of(
        _from_schemathesis(fragment),
        _from_schemathesis(fragment),
        _from_schemathesis(fragment),
        *_shaped(),
    ).filter(lambda p: p.raw not in existing and p.encoded != "")
    if not known_tasks:
        return generated
    pool = st.sampled_from(list(known_tasks)).map(
        lambda pair: Probe(encode_id(pair[1]), f"known {pair[0]} task", known_status=pair[0])
    )
    return st.one_of(generated, generated, generated, pool)


# Hypothesis' cost is per example (its engine also mutates earlier examples, which mostly re-draws
# ids already sent): 20 ids an example cost about half the CPU of 5 for the same 150 ids.
PROBES_PER_EXAMPLE = 20
# Each example draws a few spare probes: a drawn id already sent this run is skipped, not re-sent.
DRAWS_PER_EXAMPLE = 24
# Rounds of exploration when duplicates left the count short; bounded so a tiny id space ends.
ROUNDS = 4


def explore(run_seed: int, total: int, take: Callable[[Probe], bool], fragment: Fragment | None = None,
            existing_ids: Collection[str] = ()) -> int:
    """Hypothesis' exploration: draw ids with the run's seed and offer each to `take`, which says
    whether it counted (False: sent already, skipped); stops at `total` counted. Returns the count.

    Drawing needs no answer (generation does not adapt to responses), so the same seed gives the
    same ids whoever sends them, and whenever.
    """
    # Imported here: loading Hypothesis costs about 0.2 s, which a run that draws its ids in a
    # child process (engine.draws) spends there, on another core.
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    strategy = probes((), existing_ids, fragment)
    count = 0

    def one_round(round_seed: int, examples: int) -> None:
        # No shrinking: every response is recorded as it comes; the verdict needs all of them, and
        # shrinking would spend an appliance's request budget on re-sends. Probes come in batches:
        # Hypothesis' cost per example, not per draw, is what dominates a fast target.
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(round_seed)
        @given(batch=st.lists(strategy, min_size=DRAWS_PER_EXAMPLE, max_size=DRAWS_PER_EXAMPLE))
        def cancel(batch: list[Probe]) -> None:
            nonlocal count
            in_batch = 0
            for probe in batch:
                if count >= total or in_batch >= PROBES_PER_EXAMPLE:
                    return
                if take(probe):
                    count += 1
                    in_batch += 1

        cancel()

    # Draws that repeat an id sent already leave the first round short; further rounds (each
    # with its own seed, derived from the run's) draw again, a bounded number of times. Each
    # round has one example more than its ids need: Hypothesis' first is its simplest, every
    # draw the same minimal value, so at most one new id.
    for round_number in range(ROUNDS):
        missing = total - count
        if missing <= 0:
            break
        one_round(run_seed + round_number * 7919, -(-missing // PROBES_PER_EXAMPLE) + 1)
    return count


# -- the deterministic corpus: every id class once, before Hypothesis explores -----------------

GEN_DELIMS = ":/?#[]@"
SUB_DELIMS = "!$&'()*+,;="
# A fixed UUID (not any task's): its spellings probe how the server parses ids.
_CORPUS_UUID = "6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"


def _lengths() -> list[tuple[str, str]]:
    out = []
    for n in (1, 35, 36, 37, 255, 256, 1024, 2048):
        out.append((f"{n} encoded bytes", "b" * n))
    # One over the well-formed bound: the front may answer 414 (engine.urls).
    out.append(("4100 encoded bytes (over the bound)", "b" * 4100))
    return out


def corpus() -> list[tuple[str, Probe]]:
    """(class, probe) for every id class, each id once, in a fixed order.

    Ids are raw text sent percent-encoded, except the `sent raw` ones: their `encoded` goes on
    the wire exactly as written (malformed escapes, overlong UTF-8), which only a pre-encoded
    path can carry.
    """
    items: list[tuple[str, str]] = []
    for ch in GEN_DELIMS:
        items += [("gen-delim alone", ch), ("gen-delim embedded", f"a{ch}b")]
    for ch in SUB_DELIMS:
        items += [("sub-delim alone", ch), ("sub-delim embedded", f"a{ch}b")]
    # "p?q", not "a?b": the gen-delim class holds "a/b" already, and each id goes out once.
    for name, text in (("encoded slash", "p/q"), ("encoded backslash", "p\\q"), ("encoded percent", "p%q"),
                       ("period", "p.q"), ("NUL", "p\x00q"), ("CR/LF", "p\r\nq"),
                       ("DEL", "p\x7fq"), ("C1 control", "p\x85q")):
        items.append((f"percent-escape: {name}", text))
    for text in ("%zz", "%C0%AF", "%2", "%E2%82"):
        items.append(("malformed escape as literal text", text))
    for text in (".", "..", "./a", "a/..", "...", ".a"):
        items.append(("dot segment", text))
    for name, text in (("space", "a b"), ("leading space", " a"), ("trailing space", "a "), ("tab", "a\tb"),
                       ("no-break space", "a\u00a0b"), ("ideographic space", "a\u3000b"),
                       ("zero-width space", "a\u200bb"), ("only spaces", "   ")):
        items.append((f"whitespace: {name}", text))
    for name, text in (("combining mark", "e\u0301"), ("right-to-left", "\u05d0\u05d1\u202e"),
                       ("emoji", "\U0001f600"), ("noncharacter", "a\ufffeb"), ("private use", "\ue000"),
                       ("non-ASCII letter", "\u00e9t\u00e9"), ("CJK", "\u4efb\u52a1")):
        items.append((f"unicode: {name}", text))
    items += [("length", text) for _, text in _lengths()]
    for name, text in (("upper case", _CORPUS_UUID.upper()), ("no hyphens", _CORPUS_UUID.replace("-", "")),
                       ("braces", "{" + _CORPUS_UUID + "}"), ("urn", "urn:uuid:" + _CORPUS_UUID),
                       ("canonical", _CORPUS_UUID), ("nil", "00000000-0000-0000-0000-000000000000")):
        items.append((f"uuid spelling: {name}", text))
    probes_ = [(cls, Probe(encode_id(text), f"corpus: {cls}")) for cls, text in items]
    # Sent raw: only a pre-encoded path can carry overlong UTF-8. A syntactically malformed escape
    # (%zz, %2) cannot go out raw: urllib3 re-encodes a lone "%" as %25, so those are the literal
    # text ids above.
    for text in ("%C0%AF", "%E0%80%AF", "%C1%81", "%E2%82"):
        probes_.append(("malformed escape sent raw", Probe(text, "corpus: malformed escape sent raw")))
    probes_.append(("percent-escape: encoded period", Probe("a%2Eb", "corpus: percent-escape: encoded period")))
    return probes_


def corpus_for(existing_ids: Collection[str]) -> list[tuple[str, Probe]]:
    """The corpus without any id that names a listed task (and without duplicates on the wire)."""
    seen: set[str] = set()
    out = []
    for cls, probe in corpus():
        if probe.raw in existing_ids or probe.encoded in seen:
            continue
        seen.add(probe.encoded)
        out.append((cls, probe))
    return out


@dataclass(frozen=True)
class NearMiss:
    """An id that differs from a known task's id (conformance.identity): it must name no task,
    unless a standard makes it equal to the task's id (`may_resolve`: a UUID in another case)."""

    probe: Probe
    task_id: str
    status: str
    families: tuple[identity.Family, ...]

    @property
    def kind(self) -> str:
        return "/".join(f.name for f in self.families)

    @property
    def may_resolve(self) -> bool:
        return any(f.tolerated for f in self.families)

    @property
    def description(self) -> str:
        """How a hit is explained: "resolved after ... [family]", for each family deriving the id."""
        return " or ".join(f"{f.description} [{f.name}]" for f in self.families)


def near_misses(known_tasks: Sequence[tuple[str, str]], existing_ids: Collection[str], *,
                limit: int | None = None) -> list[NearMiss]:
    """Near-miss ids of known tasks in statuses that refuse a cancel (never IN_PROGRESS ones).

    Every family of `identity.FAMILIES` is sent once per kind of task id the run holds (UUID,
    integer, other string), all its ids to one task: an equivalence a stack applies, it applies to
    every task, so a second task would show nothing new. The families go to the tasks of a kind in
    turn, so the chains stay short and run side by side. Families come in priority order, and
    `limit` (the number of ids, for a budget) keeps the first ones. No id is sent twice, and none
    is a listed task's id.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    by_kind: dict[str, list[tuple[str, str, list[identity.NearMissId]]]] = {}
    for status, task_id in known_tasks:
        if status == "IN_PROGRESS" or not task_id:
            continue
        misses = [m for m in identity.near_misses(task_id) if m.text not in existing_ids]
        by_kind.setdefault(identity.kind_of(task_id), []).append((status, task_id, misses))
    out: list[NearMiss] = []
    seen: set[str] = set()
    turn: dict[str, int] = dict.fromkeys(by_kind, 0)
    for family in identity.FAMILIES:
        for kind, tasks in by_kind.items():
            if kind not in family.kinds:
                continue
            # The next task of this kind (in turn) that the family has ids for.
            for step in range(len(tasks)):
                index = (turn[kind] + step) % len(tasks)
                status, task_id, misses = tasks[index]
                mine = [m for m in misses if m.families[0] is family and m.wire not in seen]
                if not mine:
                    continue
                for miss in mine:
                    seen.add(miss.wire)
                    out.append(NearMiss(Probe(miss.wire, f"near-miss ({miss.names}) of a known {status} task"),
                                        task_id, status, miss.families))
                turn[kind] = index + 1
                break
    return out if limit is None else out[:limit]

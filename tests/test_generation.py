"""Generated ids: never an existing task, every documented shape, and reproducible from the seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
from conftest import TEST_PASSWORD
from hypothesis import HealthCheck, Phase, find, given, seed, settings
from hypothesis import strategies as st

from conformance import identity
from conformance.engine import generation
from conformance.engine.generation import PERCENT_LITERALS, RESERVED, Probe
from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.engine.urls import MAX_WELL_FORMED_BYTES, WELL_FORMED, url_class
from conformance.options import Profile, RunOptions
from conformance.tasks import encode_id

ORIGINS = {"schemathesis", "uuid-shaped", "long", "reserved characters", "percent-encoded", "unicode"}
# Ids the generators would produce often if nothing kept them out.
# Two of the percent literals are kept out (the others must still appear as their own shape).
EXISTING = {"%", "%2F", *RESERVED, "0", "a", "A", "-", "é", ".", "..", "00", "aa"}


def draw(strategy: st.SearchStrategy[Probe], count: int, seed_value: int = 1) -> list[Probe]:
    drawn: list[Probe] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(seed_value)
    @given(strategy)
    def collect(probe: Probe) -> None:
        drawn.append(probe)

    collect()
    return drawn


@pytest.fixture(scope="module")
def probes() -> list[Probe]:
    return draw(generation.probes(existing_ids=EXISTING), 500)


def test_never_an_existing_id(probes: list[Probe]) -> None:
    assert len(probes) >= 400
    clashes = [p for p in probes if p.raw in EXISTING]
    assert clashes == []


def test_known_tasks_are_mixed_in_and_never_generated() -> None:
    known = [("FAILED", "f-1"), ("CANCELLED", "c-1")]
    drawn = draw(generation.probes(known, existing_ids={"f-1", "c-1", *EXISTING}), 300)
    pooled = [p for p in drawn if p.known_status]
    assert {(p.known_status, p.raw) for p in pooled} == set(known)
    assert {p.origin for p in pooled} == {"known FAILED task", "known CANCELLED task"}
    generated = [p for p in drawn if not p.known_status]
    assert generated and all(p.raw not in {"f-1", "c-1", *EXISTING} for p in generated)


def test_every_shape_appears(probes: list[Probe]) -> None:
    origins = Counter(p.origin for p in probes)
    assert set(origins) == ORIGINS, origins


def test_shapes_are_what_they_say(probes: list[Probe]) -> None:
    for p in probes:
        assert p.encoded, p
        # One path segment on the wire: nothing that would end or split it.
        assert not set(p.encoded) & set("/?#"), p
        if p.origin == "uuid-shaped":
            assert len(p.raw.replace("-", "")) == 32 and all(c in "0123456789abcdefABCDEF-" for c in p.raw), p
        elif p.origin == "long":
            # Bounded in encoded bytes, what a server's request-line limit counts.
            assert 250 <= len(p.encoded) <= generation.MAX_LONG_ID and len(set(p.raw)) == 1, p
        elif p.origin == "reserved characters":
            assert set(p.raw) <= set(RESERVED), p
        elif p.origin == "percent-encoded":
            assert p.raw in PERCENT_LITERALS and unquote(p.encoded) == p.raw, p


def test_long_ids_stay_under_4_kb_of_url(probes: list[Probe]) -> None:
    # generation.py's promise: long ids stay under 4 KB of URL, far from 8 KB request-line caps.
    assert max(len(p.encoded) for p in probes) <= 4096


def _sent_paths(server: Any, seed_value: int) -> list[str]:
    before = len(server.request_log)
    options = RunOptions(
        base_url=server.base_url, username="admin@local", password=TEST_PASSWORD,
        tasks=server.state_document()["tasks"], profile=Profile.SCHEMA, max_examples=25, seed=seed_value,
    )
    with open_session(options) as session:
        execute(session)
    return [f"{r.method} {r.path}" for r in server.request_log[before:]]


def test_same_seed_same_requests(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    first = _sent_paths(server, 7)
    second = _sent_paths(server, 7)
    # The same set of requests (as a multiset); with requests in flight side by side
    # (--concurrency) the arrival order may differ.
    assert len(first) >= 25 and sorted(first) == sorted(second)
    assert first[0] == "POST /v1/tokens"
    other = _sent_paths(server, 8)
    assert sorted(other) != sorted(first)


# -- the edges of each shape -------------------------------------------------------------------------------

def smallest(origin: str) -> Probe:
    """The simplest probe of one shape: Hypothesis shrinks each shape to its lower bounds."""
    return find(generation.probes(), lambda p: p.origin == origin,
                settings=settings(database=None, derandomize=True, suppress_health_check=list(HealthCheck)))


def test_the_shortest_long_id_is_256_encoded_bytes() -> None:
    # Past the 255 characters a varchar(255) column holds: that is what makes an id "long".
    assert len(smallest("long").encoded) == 256


def test_the_longest_long_id_is_still_well_formed() -> None:
    # A long id is a question to the API; over the well-formed bound the HTTP layer may answer
    # 414 first, which says nothing about the cancel operation (engine.urls).
    assert generation.MAX_LONG_ID <= MAX_WELL_FORMED_BYTES
    for ch in ("a", "-", "é", "0"):
        longest = ch * (generation.MAX_LONG_ID // len(encode_id(ch)))
        assert url_class(longest, encode_id(longest)) == WELL_FORMED


@pytest.mark.parametrize("origin", ["reserved characters", "unicode"])
def test_single_character_ids_are_generated(origin: str) -> None:
    # "/" or "é" alone is the sharpest form of its class.
    assert len(smallest(origin).raw) == 1


def test_schemathesis_values_go_out_as_generated_except_dot_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    # Schemathesis hands over path parameters already percent-encoded, except "." and "..", which
    # on the wire would be dot segments the client or server resolves away: the suite encodes those.
    cases = [SimpleNamespace(path_parameters={"id": value}) for value in (".", "..", "a%20b", "...")]
    operation = SimpleNamespace(as_strategy=lambda: st.sampled_from(cases))
    monkeypatch.setattr(generation, "_schemathesis_operation", lambda fragment: operation)
    sent = {p.encoded: p.raw for p in draw(generation.probes(), 300) if p.origin == "schemathesis"}
    assert sent == {"%2E": ".", "%2E%2E": "..", "a%20b": "a b", "...": "..."}


@pytest.mark.parametrize(("task", "prefix"), [("abcd", "abc"), ("ab", "a"), ("a", None), ("1234", None)])
def test_prefix_drops_the_last_character_except_of_integers(task: str, prefix: str | None) -> None:
    # A shorter integer most likely names another task: integers get no prefix near-miss.
    found = [m.probe.raw for m in generation.near_misses([("FAILED", task)], {task}) if m.kind == "prefix-match"]
    assert found == ([prefix] if prefix else [])


def test_each_family_goes_once_per_kind_of_id_to_the_tasks_in_turn() -> None:
    uuids = [f"0000000a-0000-4000-8000-00000000000{i}" for i in range(3)]
    known = [("FAILED", uuids[0]), ("SUCCESSFUL", uuids[1]), ("CANCELLED", uuids[2]), ("PENDING", "100007")]
    misses = generation.near_misses(known, {t for _, t in known})
    raws = [m.probe.raw for m in misses]
    assert len(raws) == len(set(raws))
    per_kind: dict[str, Counter[str]] = {}
    for m in misses:
        per_kind.setdefault(identity.kind_of(m.task_id), Counter())[m.kind] += 1
    # Every family of a kind once, with all its ids (whitespace-trim has two), on one task.
    assert set(per_kind["uuid"]) == {f.name for f in identity.applicable("uuid")}
    assert set(per_kind["integer"]) == {f.name for f in identity.applicable("integer")}
    for name in per_kind["uuid"]:
        assert len({m.task_id for m in misses if m.kind == name and "-" in m.task_id}) == 1
    # The UUID tasks take the families in turn.
    assert {m.task_id for m in misses if identity.kind_of(m.task_id) == "uuid"} == set(uuids)
    # Priority order, and a limit keeps the first ones.
    assert [m.probe.raw for m in generation.near_misses(known, set(), limit=3)] == raws[:3]
    assert raws[:2] == [" " + uuids[0], uuids[0] + "\t"]


def test_a_plus_goes_out_as_a_plus() -> None:
    # Percent-encoded (%2B), the "+" would decode to "+" even in a form decoder: no test at all.
    [miss] = [m for m in generation.near_misses([("FAILED", "a b")], set()) if m.kind == "plus-as-space"]
    assert (miss.probe.encoded, miss.probe.raw) == ("a+b", "a+b")


# -- generation.explore: the drawing loop (rounds, examples, the per-example cap) ------------------

def _numbered(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every draw a fresh id: "0", "1", ... in drawing order, so the ids show which example and
    which round each came from (an example draws DRAWS_PER_EXAMPLE of them)."""
    drawn: list[int] = []

    def numbered(*args: Any, **kwargs: Any) -> st.SearchStrategy[generation.Probe]:
        def next_id(_: object) -> generation.Probe:
            drawn.append(len(drawn))
            return generation.Probe(str(drawn[-1]), "numbered")

        return st.integers().map(next_id)

    monkeypatch.setattr(generation, "probes", numbered)
    return drawn


def test_explore_takes_at_most_a_cap_per_example_and_draws_one_spare_example(
        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _numbered(monkeypatch)
    taken: list[int] = []
    count = generation.explore(1, 40, lambda p: taken.append(int(p.encoded)) is None)
    per, cap = generation.DRAWS_PER_EXAMPLE, generation.PROBES_PER_EXAMPLE
    assert count == len(taken) == 40
    # 20 of each example's 24 draws; two examples fill 40, and the round has a third to spare.
    assert taken == [*range(cap), *range(per, per + cap)]
    assert len(drawn) == 3 * per


def test_explore_fills_what_the_first_round_left_short_in_another_round(monkeypatch: pytest.MonkeyPatch) -> None:
    _numbered(monkeypatch)
    per = generation.DRAWS_PER_EXAMPLE
    # Sent already: five ids of the first example and all of the third, so the round ends one short.
    refused = {*range(5), *range(2 * per, 3 * per)}
    taken: list[int] = []

    def take(probe: generation.Probe) -> bool:
        if int(probe.encoded) in refused:
            return False
        taken.append(int(probe.encoded))
        return True

    assert generation.explore(1, 40, take) == 40
    assert taken == [*range(5, per), *range(per, per + 20), 3 * per]

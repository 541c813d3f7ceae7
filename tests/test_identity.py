"""Id identity (conformance.identity): the near-miss families, each against the reference server's
matching sloppy lookup (reference.store.LOOKUPS), at unit level and through the schema phase's
chain on a scripted target; a few chains against the real embedded server check the wire forms."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest

from conformance import identity
from conformance.engine import generation
from conformance.model import Outcome
from conformance.reference.defects import DEFECTS, TASK_ID_KIND, task_id_kind
from conformance.reference.store import LOOKUPS, TaskStore, loose_lookup, new_task_id
from conformance.suite.test_schema import Chain, send_chain
from tests.scenario_harness import Reference, ScriptedTarget, messages, outcome, scripted_session

# The reference defect that applies each family's equivalence (the tolerated family: a variation).
DEFECT_OF = {
    "whitespace-trim": "trim-ids",
    "pad-space": "pad-space-ids",
    "case-insensitive": "case-insensitive-ids",
    "prefix-match": "prefix-ids",
    "truncation": "truncated-ids",
    "like-wildcard": "like-ids",
    "numeric-parse": "numeric-ids",
    "double-decode": "double-decoded-ids",
    "path-parameter": "path-parameter-ids",
    "plus-as-space": "plus-space-ids",
    "accent-insensitive": "accent-insensitive-ids",
    "invisible-characters": "invisible-char-ids",
    "nfkc": "nfkc-ids",
    "nfc-nfd": "nfc-ids",
    "nul-truncation": "nul-truncated-ids",
    "uuid-hex-case": "uuid-case-insensitive-ids",
}
# A task id of every kind, as the reference server makes them (the string one in NFC and NFD).
IDS = {
    "uuid": ["6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", "6F1C9A2E-3B4D-4E5F-8A7B-9C0D1E2F3A4B"],
    "integer": [new_task_id("integer", 3)],
    "string": [new_task_id("string", 7), unicodedata.normalize("NFD", new_task_id("string", 7)), "task-Ab_9"],
}
ALL_IDS = [(kind, task_id) for kind, ids in IDS.items() for task_id in ids]


def test_at_least_a_dozen_families_each_with_source_kinds_and_description() -> None:
    names = [f.name for f in identity.FAMILIES]
    assert len(names) >= 12 and len(set(names)) == len(names)
    for fam in identity.FAMILIES:
        assert fam.source and fam.description.startswith("resolved") and fam.kinds <= identity.ALL_KINDS
    # Only the hex case of a UUID is an equality a standard grants; it comes last.
    assert [f.name for f in identity.FAMILIES if f.tolerated] == ["uuid-hex-case"] == names[-1:]
    assert set(DEFECT_OF) == set(names)
    for kind in identity.KINDS:
        assert len(identity.applicable(kind)) >= 10


@pytest.mark.parametrize(("kind", "task_id"), ALL_IDS)
def test_kinds(kind: str, task_id: str) -> None:
    assert identity.kind_of(task_id) == kind


@pytest.mark.parametrize(("kind", "task_id"), ALL_IDS)
def test_every_family_that_applies_derives_ids_other_than_the_task_s(kind: str, task_id: str) -> None:
    misses = identity.near_misses(task_id)
    assert task_id not in {m.text for m in misses}
    assert len({m.wire for m in misses}) == len(misses)
    derived = {f.name for m in misses for f in m.families}
    wanted = {f.name for f in identity.applicable(identity.kind_of(task_id))}
    if task_id.isascii():
        wanted -= {"nfc-nfd"}  # nothing to compose or decompose
    if " " not in task_id:
        wanted -= {"plus-as-space"}
    assert derived == wanted


@pytest.mark.parametrize(("kind", "task_id"), ALL_IDS)
@pytest.mark.parametrize("name", list(DEFECT_OF))
def test_each_family_s_ids_reach_the_task_through_its_defect_s_lookup_only(name: str, kind: str,
                                                                            task_id: str) -> None:
    # A few other tasks beside it, of the same kind, so a lookup has something to confuse it with.
    # (None shares a prefix with it: a prefix of two tasks' ids names neither.)
    others = [new_task_id(identity.kind_of(task_id), n) for n in (40, 41, 52)]
    ids = [task_id, *[o for o in others if o != task_id]]
    fam = identity.family(name)
    for miss in identity.near_misses(task_id, families=[fam]):
        # What the server decodes (once) from the wire.
        text = generation.Probe(miss.wire, "x").raw
        assert loose_lookup(text, ids, DEFECT_OF[name]) == task_id, (name, miss)
        # A correct server (exact lookup; a UUID in any hex case) finds it only when a standard says so.
        assert (loose_lookup(text, ids, "uuid-case-insensitive-ids") is not None) == fam.tolerated


U = "6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"


@pytest.mark.parametrize(("name", "task_id", "ids"), [
    ("whitespace-trim", "42", (" 42", "42\t")),
    ("pad-space", "42", ("42 ",)),
    ("case-insensitive", f"job-{U.upper()}-x", (f"JOB-{U.upper()}-X",)),
    ("prefix-match", "abc", ("ab",)),
    ("prefix-match", "ab", ("a",)),
    ("prefix-match", "a", ()),
    ("truncation", U, (U + "0",)),
    ("truncation", "42", ("42~",)),
    ("like-wildcard", "123", ("_23", "%23")),
    ("like-wildcard", "ab", ("_b", "%b")),
    ("like-wildcard", "a", ()),
    ("numeric-parse", "42", ("042", "+42", "42.0", "42e0")),
    ("double-decode", "abc", ("%61bc",)),
    ("double-decode", "\u00e2b", ("%C3%A2b",)),
    ("path-parameter", "42", ("42;jsessionid=0",)),
    ("plus-as-space", "a b c", ("a+b+c",)),
    ("invisible-characters", "ab", ("a\u200bb", "\ufeffab", "a\u00adb")),
    ("nfkc", "-a1", ("-\uff41" + "1",)),
    ("nfkc", "\u00e2b", ("\u00e2\uff42",)),
    ("nfc-nfd", "\u00e2", ("a\u0302",)),
    ("nul-truncation", "42", ("42\x00x",)),
    ("uuid-hex-case", U, (U.upper(),)),
])
def test_what_each_family_derives(name: str, task_id: str, ids: tuple[str, ...]) -> None:
    assert identity.family(name).ids(task_id) == ids


@pytest.mark.parametrize(("task_id", "accented"), [
    ("6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", "6\u1e1f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"),
    ("12-b", "12-\u1e03"), ("\u00f8a", "\u01ffa"), ("T\u00e2che 1", "Tache 1"), ("123", None)])
def test_accents_are_precomposed_on_the_first_letter_or_all_removed(task_id: str, accented: str | None) -> None:
    assert identity.family("accent-insensitive").derive(task_id) == ((accented,) if accented else ())
    if accented:
        assert unicodedata.is_normalized("NFC", accented)


def test_near_misses_go_round_by_round_and_a_limit_keeps_the_first() -> None:
    task = IDS["uuid"][0]
    misses = identity.near_misses(task)
    firsts = [m for m in misses if m.families[0].ids(task)[0] == m.text]
    assert misses[:len(firsts)] == firsts  # the first id of every family before any second one
    assert identity.near_misses(task, 3) == misses[:3]
    assert identity.near_misses(task, 0) == []
    with pytest.raises(ValueError):
        identity.near_misses(task, -1)


def test_an_id_two_families_derive_is_one_id_naming_both() -> None:
    both = identity.Family("copy", "here", identity.ALL_KINDS, "resolved twice", lambda t: (t + " ",))
    [miss] = identity.near_misses("abc", families=[identity.family("pad-space"), both])
    assert miss.names == "pad-space/copy"
    assert "PAD SPACE" in miss.description and "resolved twice [copy]" in miss.description


def test_request_cost_counts_a_read_per_group() -> None:
    task = IDS["uuid"][0]
    misses = identity.near_misses(task)
    assert identity.request_cost(misses) == len(misses) + 2
    assert identity.request_cost([m for m in misses if not m.tolerated]) == len(misses) - 1 + 1
    assert identity.request_cost([]) == 0


def test_the_reference_gives_tasks_the_kind_of_id_its_defects_need() -> None:
    assert task_id_kind([]) == "uuid" and task_id_kind(["numeric-ids"]) == "integer"
    assert task_id_kind(["nfc-ids", "trim-ids"]) == "string"
    with pytest.raises(ValueError):
        task_id_kind(["numeric-ids", "nfc-ids"])
    assert set(TASK_ID_KIND) <= set(DEFECTS) and set(DEFECT_OF.values()) <= set(DEFECTS) | set(LOOKUPS)
    store = TaskStore(id_kind="integer")
    assert [store.create("FAILED").id for _ in range(2)] == ["100000", "100001"]
    assert identity.kind_of(TaskStore(id_kind="string").create("FAILED").id) == "string"


# -- through the schema phase's chain --------------------------------------------------------------

def chain_of(task_id: str, status: str = "SUCCESSFUL") -> Chain:
    misses = generation.near_misses([(status, task_id)], {task_id})
    return Chain(generation.Probe(identity.encode(task_id), f"known {status} task", known_status=status), misses)


def sloppy(lookup: str | None, task_id: str) -> ScriptedTarget:
    """A scripted target holding `task_id` whose DELETE and GET resolve ids with `lookup`."""
    def resolve(target: ScriptedTarget, asked: str) -> Any:
        found = loose_lookup(asked, list(target.tasks), lookup) if lookup else None
        if found is None or found == asked:
            return ...
        return 200 if target.tasks[found] == "IN_PROGRESS" else 409
    return ScriptedTarget({task_id: "SUCCESSFUL"}, on_delete=resolve)


@pytest.mark.parametrize("name", [n for n in DEFECT_OF if not identity.family(n).tolerated])
def test_each_family_catches_its_defect_and_names_it(name: str) -> None:
    fam = identity.family(name)
    kind = next(k for k in ("uuid", "integer", "string") if k in fam.kinds)
    task_id = new_task_id(TASK_ID_KIND.get(DEFECT_OF[name], kind), 5)
    target = sloppy(DEFECT_OF[name], task_id)
    session = scripted_session(target)
    send_chain(session, chain_of(task_id))
    assert outcome(session, "BEH-UNKNOWN-404") is Outcome.FAIL
    assert any(fam.description in m for m in messages(session, "BEH-UNKNOWN-404")), messages(session, "BEH-UNKNOWN-404")


@pytest.mark.parametrize(("kind", "task_id"), ALL_IDS)
def test_a_correct_target_passes_every_family(kind: str, task_id: str) -> None:
    # Exact ids, a UUID in any hex case: RFC 9562's equality, which a correct server may apply.
    session = scripted_session(sloppy("uuid-case-insensitive-ids", task_id))
    send_chain(session, chain_of(task_id))
    assert outcome(session, "BEH-UNKNOWN-404") is Outcome.PASS, messages(session, "BEH-UNKNOWN-404")


# -- the wire: a few chains against the embedded reference server ---------------------------------

@pytest.fixture
def reference(request: pytest.FixtureRequest) -> Iterator[Reference]:
    ref = Reference(request.param)
    yield ref
    ref.stop()


@pytest.mark.parametrize(("reference", "failing"), [
    # Correct, with string ids: "+" and percent escapes are decoded once, the id matched exactly.
    (["string-task-ids"], None),
    (["uuid-case-insensitive-ids"], None),
    # Where the wire form matters: a "+" sent as it is, a "%" sent as %25.
    (["plus-space-ids"], "plus-as-space"),
    (["double-decoded-ids"], "double-decode"),
], indirect=["reference"], ids=["string-ids", "uuid-case", "plus", "double-decode"])
def test_chains_against_the_reference_server(reference: Reference, failing: str | None) -> None:
    session = reference.session(statuses=["FAILED"])
    [task_id] = session.pool.given["FAILED"]
    send_chain(session, chain_of(task_id, "FAILED"))
    if failing is None:
        assert outcome(session, "BEH-UNKNOWN-404") is Outcome.PASS, messages(session, "BEH-UNKNOWN-404")
        assert reference.status(task_id) == "FAILED"
    else:
        assert any(identity.family(failing).description in m for m in messages(session, "BEH-UNKNOWN-404"))

"""Generated ids drawn in a child process (conformance.engine.draws) for a command-line run."""

from __future__ import annotations

import dataclasses
import gc
import io
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from conftest import helper_outlives_its_parent
from scenario_harness import FakeClock, ScriptedTarget, new_session

from conformance.cli import main
from conformance.cli import run as run_module
from conformance.engine import draws as draws_module
from conformance.engine import helper as helper_module
from conformance.engine.draws import DrawnIds
from conformance.engine.embedded import EmbeddedServer
from conformance.engine.generation import Probe
from conformance.errors import SuiteCrashed
from conformance.options import RunOptions
from conformance.suite.test_schema import draw_generated
from conformance.tasks import encode_id


def _drawn(seed: int, total: int, count: int) -> list[tuple[str, str]]:
    drawn = DrawnIds(seed, total)
    try:
        return list(islice(drawn.pairs(), count))
    finally:
        drawn.stop()
        # Ended at once, not left drawing the ids nobody reads.
        assert drawn.process.poll() is not None


@pytest.mark.slow
def test_the_child_draws_distinct_ids_fixed_by_the_seed() -> None:
    first, again, other = _drawn(7, 30, 40), _drawn(7, 30, 40), _drawn(8, 30, 40)
    assert len(first) == 40
    assert first == again
    assert first != other
    encoded = [e for e, _ in first]
    assert len(set(encoded)) == len(encoded) and "" not in encoded
    # Schemathesis' ids and the suite's own shapes, as in a run that draws in its own process.
    origins = {origin for _, origin in first}
    assert "schemathesis" in origins and len(origins) >= 3


def test_it_draws_twice_the_ids_needed_then_says_done() -> None:
    # Spare ids for those the parent skips (sent already in the corpus, known tasks).
    drawn = DrawnIds(3, 10)
    try:
        assert len(list(drawn.pairs())) == 20
    finally:
        drawn.stop()


class Recorded(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed_at: list[int] = []

    def flush(self) -> None:
        self.flushed_at.append(len(self.getvalue().splitlines()))


def test_the_child_sends_each_id_as_soon_as_it_is_drawn() -> None:
    # Flushed line by line: the parent sends the first ids while the rest are being drawn.
    out = Recorded()
    draws_module.draw({"seed": 5, "total": 4, "spec": None}, out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == '{"done": true}' and len(lines) == 9
    assert out.flushed_at == list(range(1, 9))


def test_a_contract_the_child_cannot_load_is_one_line(tmp_path: Path) -> None:
    # The parent loads the same contract first and says why; this is the child's side of it.
    drawn = DrawnIds(1, 5, tmp_path / "missing.yaml")
    with pytest.raises(SuiteCrashed, match=r"^drawing generated ids failed: .*missing\.yaml"):
        list(drawn.pairs())
    drawn.stop()


NOISY = """
import sys
from conformance.engine import draws
def draw(request, out):
    print("noise from a library")
    out.write('{"done": true}\\n')
draws.draw = draw
sys.exit(draws.main())
"""


def test_nothing_but_the_protocol_reaches_the_childs_stdout() -> None:
    done = subprocess.run([sys.executable, "-c", NOISY], input='{"seed": 1, "total": 1, "spec": null}\n',
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, '{"done": true}\n')
    assert "noise from a library" in done.stderr


def _fake_child(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    popen = subprocess.Popen
    monkeypatch.setattr(helper_module.subprocess, "Popen",
                        lambda args, **kw: popen([sys.executable, "-c", script], **kw))


def test_a_child_that_dies_is_one_line_with_its_last_words(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import sys; print('[\"a\", \"schemathesis\"]', flush=True); "
                             "sys.stderr.write('Traceback ...\\nMemoryError: \\x1b[2Jout\\n'); sys.exit(1)")
    drawn = DrawnIds(1, 5)
    pairs = drawn.pairs()
    assert next(pairs) == ("a", "schemathesis")
    with pytest.raises(SuiteCrashed, match=r"^the process that draws generated ids stopped: MemoryError: out$"):
        next(pairs)
    drawn.stop()


def test_an_error_it_reports_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "print('{\"error\": \"cannot load\\\\nthe\\\\u001b[31m spec\"}', flush=True)")
    drawn = DrawnIds(1, 5)
    with pytest.raises(SuiteCrashed, match=r"^drawing generated ids failed: cannot load the spec$"):
        list(drawn.pairs())
    drawn.stop()


ORPHAN = """
import os
from conformance.engine.draws import DrawnIds
drawn = DrawnIds(1, 5000)
print(drawn.process.pid, flush=True)
os._exit(0)
"""


@pytest.mark.slow
def test_the_child_ends_when_its_parent_dies() -> None:
    # Its next write meets a closed pipe: it stops drawing instead of drawing 10,000 ids for nobody.
    assert not helper_outlives_its_parent(ORPHAN)


class FakeDraws:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self.read = 0
        self.stopped = False

    def pairs(self) -> Iterator[tuple[str, str]]:
        for pair in self._pairs:
            self.read += 1
            yield pair

    def stop(self) -> None:
        self.stopped = True


def test_the_schema_phase_takes_drawn_ids_it_has_not_sent_up_to_max_examples() -> None:
    known = "0c4f5a4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"
    session = new_session(ScriptedTarget(), {"SUCCESSFUL": [known]}, clock=FakeClock())
    session.options = dataclasses.replace(session.options, max_examples=3)
    fake = FakeDraws([("a", "schemathesis"), ("sent", "unicode"), (encode_id(known), "uuid-shaped"),
                      ("b", "long"), ("c", "schemathesis"), ("d", "never read")])
    session.draws = fake  # type: ignore[assignment]
    emitted: list[Probe] = []
    drawn = draw_generated(session, {"sent"}, emitted.append)
    # Skipped: an id the corpus sent, a known task's id. Then it stops reading, and ends the child.
    assert [p.encoded for p in drawn] == ["a", "b", "c"] == [p.encoded for p in emitted]
    assert [p.origin for p in drawn] == ["schemathesis", "long", "schemathesis"]
    assert fake.read == 5 and fake.stopped


def test_without_a_child_the_ids_are_drawn_in_process() -> None:
    session = new_session(ScriptedTarget(), {}, clock=FakeClock())
    session.options = dataclasses.replace(session.options, max_examples=12)
    emitted: list[Probe] = []
    drawn = draw_generated(session, set(), emitted.append)
    assert len(drawn) == 12 == len({p.encoded for p in emitted})


def test_open_session_refuses_drawn_ids_without_the_seed_they_were_drawn_with() -> None:
    from conformance.engine.session import open_session

    with pytest.raises(ValueError, match="seed"), open_session(RunOptions(seed=None), draws=FakeDraws([])):  # type: ignore[arg-type]
        pass


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    for cls, name in ((EmbeddedServer, "embedded server"), (DrawnIds, "draws")):
        original = cls.__init__

        def spy(self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            started.append(_name)

        monkeypatch.setattr(cls, "__init__", spy)
    return started


@pytest.mark.slow
def test_a_run_that_owns_its_process_starts_both_helpers_and_ends_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = _spy(monkeypatch)
    stopped: list[Any] = []
    for cls in (EmbeddedServer, DrawnIds):
        original = cls.stop

        def stop(self: Any, _original: Any = original) -> None:
            _original(self)
            stopped.append(self.process.poll())

        monkeypatch.setattr(cls, "stop", stop)
    code = run_module.run_command(own_process=True, report_dir=str(tmp_path / "r"), max_examples=20, seed=4,
                                  quiet=True)
    assert code == 0
    assert sorted(started) == ["draws", "embedded server"]
    # Both ended, whatever the run did; the drawing child as soon as the ids were in.
    assert len(stopped) >= 2 and None not in stopped


@pytest.mark.slow
def test_helpers_are_for_the_schema_profile_and_a_real_run_only(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started = _spy(monkeypatch)
    assert run_module.run_command(own_process=True, report_dir=str(tmp_path / "r"), profile="behavior",
                                  seed=4, quiet=True) == 0
    assert started == ["embedded server"]
    started.clear()
    assert run_module.run_command(own_process=True, dry_run=True) == 0
    assert started == []


@pytest.mark.slow
def test_an_in_process_call_starts_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = _spy(monkeypatch)
    with pytest.raises(SystemExit) as ended:
        main(["run", "--quiet", "--max-examples", "10", "--seed", "2", "--report-dir", str(tmp_path / "r")])
    assert ended.value.code == 0
    assert started == []


def test_the_entry_point_owns_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(run_module, "run_command", lambda **kw: seen.append(kw["own_process"]) or 0)
    monkeypatch.setattr(sys, "argv", ["sddc-conformance", "run"])
    try:
        with pytest.raises(SystemExit):
            main()
        with pytest.raises(SystemExit):
            main(["run"])
    finally:
        gc.unfreeze()  # main() as the entry point froze this process's heap for its exit
    assert seen == [True, False]


def test_a_helper_that_cannot_start_ends_the_run_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(helper_module.subprocess, "Popen", refuse)
    code = run_module.run_command(own_process=True, report_dir=str(tmp_path / "r"), seed=1, quiet=True)
    assert code == 4
    assert capsys.readouterr().err == ("sddc-conformance: internal error: cannot start the embedded reference "
                                       "server: [Errno 12] Cannot allocate memory\n")

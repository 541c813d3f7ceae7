"""The budget plan: every MUST's minimum first, breadth by priority, a too-small budget refused up front."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import run_in_process
from scenario_harness import FakeClock

from conformance.engine import budget
from conformance.engine.budget import BREADTH, Budget, BudgetTooSmall, Facts, plan, settle_reads
from conformance.model import Outcome, Severity
from conformance.requirements import scenarios
from conformance.requirements.scenarios import CancelLedger, Reading, await_cancelled

# An appliance-like target: 8 IN_PROGRESS tasks and 12 in refusable statuses handed over, a login.
APPLIANCE = Facts(budget=300, schema=True, behavior=True, overhead=23, has_credentials=True, in_progress=8,
                  refusable=12, race_width=8, settle_timeout=30.0, corpus=89, near_misses=60,
                  generated=150, stateful_examples=3)


# -- arithmetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("window", [0.0, 0.05, 1.0, 5.0, 30.0, 400.0])
def test_settle_reads_is_what_a_never_settling_cancel_reads(window: float, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    reads: list[str] = []

    def read(session: Any, task_id: str, purpose: str) -> Reading:
        reads.append(purpose)
        return Reading(SimpleNamespace(error=None), "IN_PROGRESS", 200)  # type: ignore[arg-type]

    monkeypatch.setattr(scenarios, "read", read)
    session = SimpleNamespace(clock=clock, sleep=clock.sleep, settle_timeout=window, cancels=CancelLedger())
    await_cancelled(session, "t", "p", since=0.0)  # type: ignore[arg-type]
    assert settle_reads(window) == len(reads)


def test_minimum_is_the_overhead_plus_every_reserve() -> None:
    p = plan(APPLIANCE)
    settle = settle_reads(30.0)
    assert p.reserved["BEH-CANCEL"][0] == 2 + settle
    assert p.reserved["BEH-RECANCEL"][0] == 2
    assert p.reserved["BEH-NOT-CANCELLABLE"][0] == 24
    assert p.reserved["BEH-UNKNOWN-404"][0] == 3
    assert p.reserved["BEH-RACE"][0] == 2 + 8 + settle
    assert p.reserved["AUTH-REQUIRED"][0] == 2
    assert p.reserved["BEH-STATEFUL"][0] == 1 + budget.stateful_example(APPLIANCE) + 12 + 1 + 1
    assert p.minimum == 23 + sum(n for n, _ in p.reserved.values())
    # Every MUST of the catalogue is in the plan, none twice.
    from conformance.requirements import catalogue
    assert set(p.reserved) == {r.id for r in catalogue() if r.severity is Severity.MUST}


def test_breadth_is_allotted_in_priority_order_within_what_is_left() -> None:
    p = plan(APPLIANCE)
    spare = 300 - p.minimum
    assert sum(p.costs.values()) <= spare
    names = [c.name for c in BREADTH]
    assert names[:4] == ["known refusable tasks", "near-miss ids", "id corpus", "generated ids"]
    # Each allotment, in order, is the largest that fits what the earlier ones left: one more unit
    # would overrun it (what is left after that goes on to the next category).
    left = spare
    for category in BREADTH:
        n = p.allotted[category.name]
        if n < p.wanted[category.name]:
            assert category.cost(APPLIANCE, n + 1) > left
        left -= category.cost(APPLIANCE, n)


def test_unlimited_budget_allots_everything_and_the_next_category_is_one_row() -> None:
    p = plan(dataclasses.replace(APPLIANCE, budget=None))
    assert p.allotted == p.wanted
    assert p.wanted["generated ids"] == 150 and p.wanted["state-machine examples"] == 2


def test_a_budget_below_the_minimum_names_the_number() -> None:
    needed = plan(dataclasses.replace(APPLIANCE, budget=None)).minimum
    plan(dataclasses.replace(APPLIANCE, budget=needed))
    with pytest.raises(BudgetTooSmall, match=f"--max-requests {needed - 1} is below the {needed} requests"):
        plan(dataclasses.replace(APPLIANCE, budget=needed - 1))


def test_missing_inputs_reserve_nothing_and_say_why() -> None:
    schema_only = plan(dataclasses.replace(APPLIANCE, behavior=False, budget=100))
    assert "BEH-CANCEL" not in schema_only.reserved
    assert schema_only.reserved["SCH-200-EMPTY"] == (0, "NOT RUN: this profile never cancels, so no 200 comes back")
    # Some DELETE must go out for the response checks when no scenario sends one.
    assert schema_only.reserved["SRV-ANSWERS"][0] == 1
    # ... spent as a corpus id; the known tasks' refusals are breadth under this profile, and first.
    bare = plan(dataclasses.replace(APPLIANCE, behavior=False, budget=APPLIANCE.overhead + 1))
    assert bare.minimum == APPLIANCE.overhead + 1 and bare.allotted["id corpus"] == 1
    assert schema_only.allotted["known refusable tasks"] == 12 and "known refusable tasks" not in [
        c for c, n in plan(APPLIANCE).wanted.items() if n]
    one_task = plan(dataclasses.replace(APPLIANCE, in_progress=1, has_credentials=False))
    assert one_task.reserved["BEH-RACE"][0] == 0 and one_task.reserved["BEH-STATEFUL"][0] == 0
    assert one_task.reserved["AUTH-REQUIRED"] == (0, "NOT RUN: the run has no credentials")
    assert one_task.reserved["BEH-CANCEL"][0] > 0


def test_budget_admits_the_allotment_then_more_only_once_every_scenario_ended() -> None:
    facts = dataclasses.replace(APPLIANCE, budget=plan(dataclasses.replace(APPLIANCE, budget=None)).minimum + 3,
                                near_misses=0, corpus=0)
    left = [50]
    b = Budget(plan(facts), lambda: left[0])
    assert b.units("generated ids") == 3
    assert [b.admit("generated ids") for _ in range(4)] == [True, True, True, False]
    scenarios = [rid for rid, (n, _) in b.plan.reserved.items() if n]
    for rid in scenarios[:-1]:
        b.release(rid)
    # One scenario may still need its reserve: no loan.
    assert not b.admit("generated ids")
    b.release(scenarios[-1])
    assert b.admit("generated ids")
    left[0] = 0
    assert not b.admit("generated ids")
    assert b.held_back == {"generated ids": 3}


def test_stateful_examples_follow_the_plan() -> None:
    tight = Budget(plan(dataclasses.replace(APPLIANCE, budget=None, generated=0)))
    assert tight.stateful_examples() == 3
    assert Budget(plan(APPLIANCE)).stateful_examples() == 1


# -- whole runs -----------------------------------------------------------------------------------
def _musts_not_run(run: Any) -> list[str]:
    return [r.requirement.id for r in run.results
            if r.requirement.severity is Severity.MUST and r.outcome is Outcome.NOT_RUN]


def test_300_requests_judge_every_must_of_a_correct_target() -> None:
    run = run_in_process(max_requests=300, max_examples=150)
    assert run.headline == "CONFORMANT", [(r.requirement.id, r.reason) for r in run.results]
    assert _musts_not_run(run) == []
    assert run.requests_sent <= 300


@pytest.mark.slow
@pytest.mark.parametrize("defect", ["recancel-200", "cancel-not-applied", "racing-cancels", "changes-after-read"])
def test_300_requests_still_fail_a_broken_target(defect: str) -> None:
    run = run_in_process(defect, max_requests=300, max_examples=150)
    assert run.headline.startswith("NOT CONFORMANT"), run.headline


def test_cli_refuses_a_budget_below_the_minimum_before_sending(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--max-requests", "40", "--report-dir", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-requests 40 is below the" in err[0] and "allow at least" in err[0]
    assert not (tmp_path / "r").exists()


def test_dry_run_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps({"IN_PROGRESS": [f"00000000-0000-4000-8000-00000000000{i}" for i in range(8)],
                                 "SUCCESSFUL": ["10000000-0000-4000-8000-000000000000"]}), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--dry-run", "--base-url", "https://sddc.example", "--token", "t", "--tasks-file", str(tasks),
              "--max-requests", "300"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "budget plan: 300 requests; 2 before the first judged request" in out
    for rid in ("BEH-CANCEL", "BEH-STATEFUL", "AUTH-REQUIRED"):
        assert any(line.split()[:1] == ["reserved"] and rid in line for line in out.splitlines()), rid
    for name in ("near-miss ids", "id corpus", "generated ids"):
        assert any(line.split()[:1] == ["allotted"] and name in line for line in out.splitlines()), name

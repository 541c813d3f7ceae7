"""Schema conformance: generated ids go to DELETE /v1/tasks/{id}; every answer meets every check.

Stateless and safe against any target: the ids are either generated (and checked not to name an
existing task) or known tasks in statuses that must refuse a cancel.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from conformance import requirements
from conformance.engine import generation
from conformance.engine.generation import Probe
from conformance.engine.session import SuiteSession
from conformance.requirements import scenarios as behavior
from conformance.suite._assert import assert_requirements_held

RESPONSE_REQUIREMENTS = [r.id for r in requirements.response_checks()]
PROBES_PER_EXAMPLE = 5

pytestmark = [pytest.mark.sddc_profile("schema"), pytest.mark.requirement(*RESPONSE_REQUIREMENTS)]


def test_generated_ids(sddc_session: SuiteSession) -> None:
    session = sddc_session
    session.activity = "schema checks: generated ids"
    strategy = generation.probes(session.pool.non_cancellable(), session.pool.known_ids(), session.contract)

    total = session.options.max_examples
    sent = 0

    # No shrinking: every response is recorded as it comes; the verdict needs all of them, and
    # shrinking would spend an appliance's request budget on re-sends. Probes come in batches:
    # Hypothesis' cost per example, not per draw, is what dominates a fast target.
    @settings(
        max_examples=-(-total // PROBES_PER_EXAMPLE),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(session.seed)
    @given(batch=st.lists(strategy, min_size=PROBES_PER_EXAMPLE, max_size=PROBES_PER_EXAMPLE))
    def cancel(batch: list[Probe]) -> None:
        nonlocal sent
        for probe in batch[: total - sent]:
            send(session, probe)
            sent += 1

    cancel()
    assert_requirements_held(session, RESPONSE_REQUIREMENTS)


def send(session: SuiteSession, probe: Probe) -> None:
    purpose = f"{probe.origin} (must be refused)" if probe.known_status else f"generated id ({probe.origin})"
    exchange = session.target.cancel(probe.encoded, purpose=purpose, task_id=probe.raw)
    session.recorder.check(exchange)
    if probe.known_status is None:
        behavior.judge_generated(session, exchange)

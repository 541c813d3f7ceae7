"""Behavioural conformance: one test per registered scenario, in registration order."""

from __future__ import annotations

import pytest

from conformance import requirements
from conformance.engine.session import SuiteSession
from conformance.suite._assert import assert_requirements_held
from conformance.suite._lane import lane_of

SCENARIOS = requirements.scenario_requirements()

pytestmark = pytest.mark.sddc_profile("behavior")


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(r, id=r.id, marks=pytest.mark.requirement(r.id)) for r in SCENARIOS],
)
def test_scenario(request: pytest.FixtureRequest, sddc_session: SuiteSession,
                  scenario: requirements.Requirement) -> None:
    # The scenarios run in order in their own lane, started beside the schema phase when both
    # profiles run (engine.lanes); this item waits for its own and re-raises what it raised.
    lane_of(request, sddc_session).result(scenario.id)
    assert_requirements_held(sddc_session, [scenario.id])
    reason = sddc_session.recorder.unexercised_reason(scenario.id)
    if reason is not None:
        pytest.skip(f"NOT RUN: {reason}")

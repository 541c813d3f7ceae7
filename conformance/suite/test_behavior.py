"""Behavioural conformance: one test per registered scenario, in registration order."""

from __future__ import annotations

import pytest

from conformance import requirements
from conformance.engine.session import SuiteSession
from conformance.suite._assert import assert_requirements_held

SCENARIOS = requirements.scenario_requirements()

pytestmark = pytest.mark.sddc_profile("behavior")


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(r, id=r.id, marks=pytest.mark.requirement(r.id)) for r in SCENARIOS],
)
def test_scenario(sddc_session: SuiteSession, scenario: requirements.Requirement) -> None:
    sddc_session.activity = f"{scenario.id}: {scenario.title}"
    scenario.func(sddc_session)
    assert_requirements_held(sddc_session, [scenario.id])
    reason = sddc_session.recorder.unexercised_reason(scenario.id)
    if reason is not None:
        pytest.skip(f"NOT RUN: {reason}")

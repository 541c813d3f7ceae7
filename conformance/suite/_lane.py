"""The run's scenario lane, made from the scenario items this pytest run selected."""

from __future__ import annotations

import pytest

from conformance.engine.lanes import ScenarioLane
from conformance.engine.session import SuiteSession
from conformance.model import Requirement


def lane_of(request: pytest.FixtureRequest, session: SuiteSession) -> ScenarioLane:
    """After -k, -m and the profile chose the items: their scenarios, in the items' order."""
    if session.lane is None:
        chosen: list[Requirement] = []
        for item in request.session.items:
            callspec = getattr(item, "callspec", None)
            scenario = callspec.params.get("scenario") if callspec is not None else None
            if isinstance(scenario, Requirement) and scenario not in chosen:
                chosen.append(scenario)
        session.scenarios(chosen)
    assert session.lane is not None
    return session.lane


def start_beside(request: pytest.FixtureRequest, session: SuiteSession) -> None:
    """Start the scenarios in the background, unless --concurrency 1 asks for one request at a time."""
    if session.options.concurrency > 1:
        lane_of(request, session).start()

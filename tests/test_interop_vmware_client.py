"""The reference server driven by VMware's official Python client, vmware-sddc-manager.

If the vendor's own client cannot talk to the reference server, the reference is
not faithful, whatever the suite says about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from conformance.reference import ReferenceConfig, ReferenceServer

pytest.importorskip("vmware.sddc_manager")

from vmware.sddc_manager.model_client import Error, TokenCreationSpec
from vmware.sddc_manager.v1.tokens.access_token_client import Refresh
from vmware.sddc_manager.v1_client import Tasks, Tokens
from vmware.vapi.lib.connect import get_requests_connector
from vmware.vapi.stdlib.client.factories import StubConfigurationFactory

pytestmark = pytest.mark.interop

PASSWORD = "interop-password"


def _stub_config(session: requests.Session, url: str) -> Any:
    connector = get_requests_connector(session=session, msg_protocol="rest", url=url)
    return StubConfigurationFactory.new_std_configuration(connector)


@pytest.fixture
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(ReferenceConfig(password=PASSWORD)) as running:
        yield running


@pytest.fixture
def tasks(server: ReferenceServer) -> Iterator[Any]:
    with requests.Session() as session:
        config = _stub_config(session, server.base_url)
        pair = Tokens(config).create_token(
            token_creation_spec=TokenCreationSpec(username="admin@local", password=PASSWORD))
        session.headers["Authorization"] = "Bearer " + pair.access_token
        yield Tasks(config)


def test_official_client_gets_a_token_pair(server: ReferenceServer) -> None:
    with requests.Session() as session:
        config = _stub_config(session, server.base_url)
        pair = Tokens(config).create_token(
            token_creation_spec=TokenCreationSpec(username="admin@local", password=PASSWORD))
        assert pair.access_token and pair.refresh_token.id
        refreshed = Refresh(config).refresh_access_token(pair.refresh_token.id)
        assert isinstance(refreshed, str) and refreshed != pair.access_token


def test_official_client_cancels_in_progress_task(server: ReferenceServer, tasks: Any) -> None:
    task_id = server.store.ids_by_status()["IN_PROGRESS"][0]
    assert tasks.cancel_task(task_id) is None
    assert tasks.get_task(task_id).status == "CANCELLED"


def test_official_client_sees_404_error(server: ReferenceServer, tasks: Any) -> None:
    with pytest.raises(Error) as excinfo:
        tasks.cancel_task("no-such-task")
    assert excinfo.value.error_code == "TA_TASK_NOT_FOUND"
    assert excinfo.value.message == "Task with ID no-such-task not found"
    assert server.request_log[-1].status_code == 404


def test_official_client_sees_409_error(server: ReferenceServer, tasks: Any) -> None:
    task_id = server.store.ids_by_status()["SUCCESSFUL"][0]
    with pytest.raises(Error) as excinfo:
        tasks.cancel_task(task_id)
    assert excinfo.value.error_code == "TA_TASK_CAN_NOT_BE_CANCELLED"
    assert excinfo.value.arguments == [task_id]
    assert server.request_log[-1].status_code == 409
    assert server.store.ids_by_status()["SUCCESSFUL"][0] == task_id


def test_official_client_accepts_newer_build_error_fields() -> None:
    config_with_fields = ReferenceConfig(password=PASSWORD, defects=frozenset({"newer-build-fields"}))
    with ReferenceServer(config_with_fields) as srv, requests.Session() as session:
        config = _stub_config(session, srv.base_url)
        pair = Tokens(config).create_token(
            token_creation_spec=TokenCreationSpec(username="admin@local", password=PASSWORD))
        session.headers["Authorization"] = "Bearer " + pair.access_token
        with pytest.raises(Error) as excinfo:
            Tasks(config).cancel_task("no-such-task")
        assert excinfo.value.error_code == "TA_TASK_NOT_FOUND"
        assert excinfo.value.label == "Task not cancelled"

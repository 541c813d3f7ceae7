"""A clean install: the wheel carries the `conformance` package and its data, nothing else top-level."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hatchling.builders.wheel import WheelBuilder

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel as `pip install .` builds it, through the project's own backend, in this process."""
    # Built from the checkout into a temporary directory; the checkout itself is only read.
    built = list(WheelBuilder(str(REPO_ROOT)).build(directory=str(tmp_path_factory.mktemp("wheel")),
                                               versions=["standard"]))
    assert len(built) == 1, built
    return zipfile.ZipFile(built[0])


def top_level_names(names: list[str]) -> set[str]:
    return {name.split("/", 1)[0] for name in names}


def test_the_wheel_installs_only_the_conformance_package(wheel: zipfile.ZipFile) -> None:
    tops = top_level_names(wheel.namelist())
    dist_info = {name for name in tops if name.endswith(".dist-info")}
    assert len(dist_info) == 1, tops
    # Not `benchmarks` (it would shadow a user's own package), not tests or docs.
    assert tops - dist_info == {"conformance"}, tops


def test_the_wheel_carries_the_fragment_and_the_entry_points(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    # The contract the suite loads at run time, force-included from openapi/.
    assert "conformance/openapi/cancel-task.yaml" in names
    assert (REPO_ROOT / "openapi" / "cancel-task.yaml").read_bytes() == wheel.read(
        "conformance/openapi/cancel-task.yaml")
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "sddc-conformance = conformance.cli:main" in text
    assert "sddc_conformance = conformance.pytest_plugin" in text


def test_top_level_names_of_a_wheel_listing() -> None:
    listing = ["conformance/__init__.py", "benchmarks/mutation.py", "x-0.1.dist-info/RECORD"]
    assert top_level_names(listing) == {"conformance", "benchmarks", "x-0.1.dist-info"}


def test_benchmarks_still_run_from_a_checkout() -> None:
    # pytest's pythonpath ["."] puts the checkout first, as `python -m benchmarks...` from it does.
    import benchmarks.detection

    assert Path(benchmarks.detection.__file__).resolve().is_relative_to(REPO_ROOT)

"""The latency benchmark's repeated rows: each shows its median run."""

from __future__ import annotations

import pytest

from benchmarks.bench_run import ProcessRun, main, median_run


def run(wall: float, requests: int = 10) -> ProcessRun:
    return ProcessRun("suite", wall, requests, requests, requests, 0.5, 0)


def test_the_median_run_is_kept_whole_and_its_label_lists_every_wall() -> None:
    got = median_run([run(3.2, 11), run(2.9, 12), run(4.0, 13)])
    assert (got.wall, got.requests) == (3.2, 11)  # the median run's own counts, not a mix
    assert got.label == "suite [median of 3.20, 2.90, 4.00]"


def test_an_even_count_takes_the_lower_middle_and_one_run_is_itself() -> None:
    assert median_run([run(2.0), run(1.0), run(4.0), run(3.0)]).wall == 2.0
    assert median_run([run(5.0)]) == run(5.0)


def test_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--latency-ms", "0", "--repeat", "0"])
    assert exc.value.code == 2 and "--repeat must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--settle-seconds", "-1"], ["--only-settle", "--settle-seconds", "0"]])
def test_the_settle_rows_need_a_positive_window(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--latency-ms", "0", *args])
    assert exc.value.code == 2 and "--settle-seconds must be positive" in capsys.readouterr().err


def test_the_rows_run_against_the_reference_or_the_stdlib_target() -> None:
    from benchmarks.bench_run import embedded, stdlib

    for serve in (embedded(), embedded(3.0), stdlib(), stdlib(3.0)):
        with serve(0) as served:
            assert served.base_url.startswith("http://127.0.0.1:")
            assert served.state["tasks"]["IN_PROGRESS"] and served.log() is not None

"""Timings that can be trusted: a noisy timing is measured again, flagged if it stays noisy, and kept out of
the headline ratios; the machine's load is recorded before and after each case.

Every timing here is synthetic (an injected sample source, clock and load reader): the tests are
deterministic and never assert a real wall time. With 5 samples, ``statistics.quantiles(method="inclusive")``
gives q1, median, q3 = the 2nd, 3rd and 4th smallest, so each spread below is read off by hand.
"""
from __future__ import annotations

import csv
import itertools

import pytest

from benchmarks.cases import Case
from benchmarks.records import MAX_REMEASURES, NOISE_THRESHOLD, is_noisy
from benchmarks.runner import run_group, time_case
from benchmarks.step import Step
from benchmarks.store import ResultsStore

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

CASE = Case("raw", "jax", "cpu", "scan", 4, 10, 20)
STEADY = [2.0, 2.0, 2.0, 2.1, 2.1]      # q1 2.0, median 2.0, q3 2.1: IQR / median = 0.05
NOISY_20 = [1.0, 1.0, 1.0, 1.2, 1.2]    # 0.2 / 1.0 = 0.20
NOISY_50 = [1.0, 1.0, 1.0, 1.5, 1.5]    # 0.50
NOISY_30 = [1.0, 1.0, 1.0, 1.3, 1.3]    # 0.30
AT_THRESHOLD = [2.5, 2.5, 2.5, 2.75, 2.75]  # 0.25 / 2.5 = 0.1 exactly: steady (the rule is "over 10 %")


def idle_step() -> Step:
    return Step(run=lambda: None, sync=lambda out: None, describe=lambda: {"kernel": "stand-in"})


def samples(*measurements):
    """A sample source that returns the given measurements in turn, and counts its calls."""
    queue = list(measurements)
    calls = []

    def sampler(step, seconds):
        calls.append(seconds)
        return list(queue.pop(0))
    sampler.calls = calls
    return sampler


def test_the_rule_constants():
    assert NOISE_THRESHOLD == 0.10 and MAX_REMEASURES == 2


def test_a_noisy_measurement_is_taken_again_and_the_steady_one_kept():
    sampler = samples(NOISY_20, STEADY)
    result = time_case(CASE, idle_step(), 1.0, sampler=sampler)
    assert len(sampler.calls) == 2
    assert result["noisy"] is False and result["measurements"] == 2
    assert (result["q1_s"], result["median_s"], result["q3_s"]) == (2.0, 2.0, 2.1)
    assert result["spreads"] == pytest.approx([0.2, 0.05])


def test_a_timing_still_noisy_after_the_retries_is_flagged_with_its_steadiest_measurement():
    sampler = samples(NOISY_50, NOISY_20, NOISY_30, STEADY)  # the fourth is never asked for
    result = time_case(CASE, idle_step(), 1.0, sampler=sampler)
    assert len(sampler.calls) == 1 + MAX_REMEASURES
    assert result["noisy"] is True and result["measurements"] == 3
    assert result["rel_iqr"] == pytest.approx(0.2) and result["q3_s"] == 1.2


def test_a_spread_of_exactly_the_threshold_is_steady():
    sampler = samples(AT_THRESHOLD, STEADY)
    result = time_case(CASE, idle_step(), 1.0, sampler=sampler)
    assert len(sampler.calls) == 1 and result["noisy"] is False and result["median_s"] == 2.5


def test_no_remeasure_when_the_case_has_no_time_left():
    ticks = itertools.count()  # a clock that advances one second each reading
    sampler = samples(NOISY_20, STEADY)
    result = time_case(CASE, idle_step(), 1.0, max_seconds=0.5, sampler=sampler, clock=lambda: float(next(ticks)))
    assert len(sampler.calls) == 1 and result["noisy"] is True and result["measurements"] == 1


def test_run_group_records_noise_and_the_load_before_and_after_each_case(tmp_path):
    quiet, busy = Case("raw", "jax", "cpu", "scan", 1, 10, 20), Case("raw", "jax", "cpu", "scan", 2, 10, 20)
    loads = iter([0.5, 0.7, 3.0, 4.5])  # before and after `quiet`, then `busy`
    run_group([quiet, busy], lambda case: idle_step(), ResultsStore(tmp_path), float("inf"), case_seconds=0.01,
              sampler=samples(STEADY, NOISY_50, NOISY_20, NOISY_30), load=lambda: next(loads), log=lambda s: None)
    saved = ResultsStore(tmp_path).records
    assert saved[quiet.key]["noisy"] is False and saved[busy.key]["noisy"] is True
    assert (saved[quiet.key]["loadavg_before"], saved[quiet.key]["loadavg_after"]) == (0.5, 0.7)
    assert (saved[busy.key]["loadavg_before"], saved[busy.key]["loadavg_after"]) == (3.0, 4.5)
    with open(tmp_path / "results.csv", newline="") as f:
        rows = {row["key"]: row for row in csv.DictReader(f)}
    assert rows[busy.key]["noisy"] == "True" and rows[busy.key]["loadavg_after"] == "4.5"
    assert rows[quiet.key]["noisy"] == "False" and rows[busy.key]["measurements"] == "3"


def test_records_without_the_flag_are_judged_by_their_quartiles():
    assert is_noisy({"q1_s": 0.1, "median_s": 0.28, "q3_s": 0.38})          # the raw torch at batch 1
    assert not is_noisy({"q1_s": 1.0, "median_s": 1.0, "q3_s": 1.05})
    assert not is_noisy({"q1_s": 0.1, "median_s": 0.28, "q3_s": 0.38, "noisy": False})  # the flag decides


# ---------------------------------------------------------------- the summary and the figures


def record(group: str, shape: tuple, median: float, noisy: bool = False, **extra) -> dict:
    impl, fw, device, path = group.split("-")
    c = Case(impl, fw, device, path, *shape)
    q1, q3 = (0.5 * median, 1.5 * median) if noisy else (0.99 * median, 1.01 * median)
    return {"key": c.key, **c.as_dict(), "status": "ok", "median_s": median, "q1_s": q1, "q3_s": q3,
            "iqr_s": q3 - q1, "repeats": 5, "first_step_s": 0.1, "sequences_per_s": shape[0] / median,
            "gflop": 0.001 * shape[0], "gflops": 0.001 * shape[0] / median, "kernel": "k", "noisy": noisy,
            "measurements": 3 if noisy else 1, "loadavg_before": 1.0, "loadavg_after": 5.0 if noisy else 1.0, **extra}


SHAPES = [(1, 100, 20), (8, 100, 20), (64, 100, 20)]


def noisy_results(tmp_path):
    """Keras over raw: 2.0 and 4.0 on two steady shapes; 100 where raw torch was noisy (left out)."""
    store = ResultsStore(tmp_path, machine={"cpu": "test cpu", "cpu_count": 2, "gpus": []})
    for shape, keras_s, raw_s, raw_noisy in ((SHAPES[0], 0.02, 0.01, False), (SHAPES[1], 0.04, 0.01, False),
                                             (SHAPES[2], 1.00, 0.01, True)):
        store.put(record("keras-jax-cpu-auto", shape, keras_s))
        store.put(record("raw-torch-cpu-native", shape, raw_s, noisy=raw_noisy))
    return store


def test_the_headline_ratios_come_from_steady_pairs_only(tmp_path):
    from benchmarks.summary import write_summary
    noisy_results(tmp_path)
    write_summary(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    # median of 2.0 and 4.0, over 2 shapes, 1 pair left out (with it, the median would be 4.0 over 3)
    assert "| keras-jax-cpu-auto | raw-torch-cpu-native | 2 | 3.00 | 2.50-3.50 | 2.00-4.00 | 1 |" in text
    assert "1 pair left out as noisy" in text
    assert "## Noise (1 noisy of 6 timed)" in text
    assert "| `raw-torch-cpu-native\\|B64\\|T100\\|U20\\|D16\\|float32` | 10 | 100% | 3 | 1.0 | 5.0 |" in text
    # raw torch's noisy B=64 does not count: Keras, the one steady timing there, has that shape (else raw 3)
    assert "shapes won: `raw-torch-cpu-native` 2, `keras-jax-cpu-auto` 1." in text
    ratios = (tmp_path / "ratios.csv").read_text().splitlines()
    assert ratios[0].endswith(",noisy") and sum(line.endswith(",True") for line in ratios) == 1  # kept, flagged


def test_the_figures_mark_noisy_timings_apart(tmp_path, monkeypatch):
    import benchmarks.plots as plots
    drawn = {}

    def keep(fig, path):  # look at the figure instead of the file
        drawn[path.name] = fig
    monkeypatch.setattr(plots, "atomic_savefig", keep)
    monkeypatch.setattr(plots.plt, "close", lambda fig=None: None)
    store = noisy_results(tmp_path)
    plots.draw_all(tmp_path, store.machine, list(store.records.values()))
    lines = [line for ax in drawn["crossover_cpu.png"].axes for line in ax.get_lines()]
    crosses = [(list(line.get_xdata()), line.get_marker()) for line in lines if line.get_marker() == plots.NOISY_MARKER]
    assert crosses == [([64], "x")]  # raw torch at B=64, and nothing else
    texts = [t.get_text() for ax in drawn["keras_over_raw_cpu.png"].axes for t in ax.texts]
    assert sorted(t for t in texts if t.endswith(plots.NOISY_MARK)) == [f"100{plots.NOISY_MARK}"]  # 1.00 / 0.01, the noisy pair
    assert f"2{plots.NOISY_MARK}" not in texts and "2" in texts

"""The summary's GPU sections, on a hand-made GPU results set, so they render right the first time real GPU results arrive.

``parity_tests/fixtures/gpu_results/results.json`` was written by hand in the record format: one
H200 host, T=100, U=512, batches 1, 8, 64, 256, four groups. Its numbers were chosen so that every
expected figure below follows by hand from them:

    step time (ms)          B=1    B=8    B=64   B=256
    keras-jax-gpu-auto      10     10     11     49.760  (6700 GFLOP/s at B=256: 333.39 GFLOP / 49.76 ms)
    raw-torch-gpu-native     8      8      9     41.467  (8040 GFLOP/s at B=256)
    keras-jax-cpu-auto       5      8     20     5 x 49.760
    raw-torch-cpu-native     4*    12      8     3 x 41.467        (* noisy: IQR 3 ms of a 4 ms median)

- target ratio at B=256, T=100, U=512: 49.760 / 41.467 = 8040 / 6700 = 1.20 <= 1.25: met;
- fraction of the H200's peaks (FP32 67, dense TF32 494.7 TFLOP/s) at each GPU group's largest case (B=256):
  6.7 / 67 = 10.0 %, 6.7 / 494.7 = 1.35 % (1.4); 8.04 / 67 = 12.0 %, 8.04 / 494.7 = 1.63 % (1.6);
- CPU time / GPU time: Keras JAX 5/10 = 0.50, 8/10 = 0.80, 20/11 = 1.82, 5.00: the GPU wins from B=64;
  raw torch: noisy at B=1, 12/8 = 1.50, 8/9 = 0.89, 3.00: it wins at B=8 but loses at B=64, so the GPU
  wins from B=256 on (the crossover is where it wins at every larger batch).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.records import cpu_counterpart
from benchmarks.store import read_results, record_problem
from benchmarks.summary import crossover_batch, write_summary

pytestmark = pytest.mark.backend_independent  # no Keras backend changes these: once a make test-keras run

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gpu_results"


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("gpu") / "nvidia-h200-16c-test"
    shutil.copytree(FIXTURE, folder)
    write_summary(folder)
    return folder, (folder / "summary.md").read_text()


def test_the_fixture_is_a_valid_results_set():
    """Every record passes the checks --resume applies: the fixture is what a run writes, not a sketch."""
    machine, records, dropped = read_results(FIXTURE / "results.json")
    assert dropped == [] and len(records) == 16 and machine["gpus"] == ["NVIDIA H200"]
    assert [r["key"] for r in records if record_problem(r)] == []


def test_keras_jax_cudnn_against_raw_torch_cudnn_at_the_headline_shape(summary):
    _, text = summary
    assert "ratio **1.20**" in text and "target <= 1.25: met." in text
    assert "kernel `cudnn-fused-bidirectional`" in text
    assert "49.8 ms a step against raw torch cuDNN 41.5 ms" in text


def test_fraction_of_the_fp32_and_tf32_peaks(summary):
    _, text = summary
    assert ("`keras-jax-gpu-auto` largest steady case B=256, T=100, U=512 (TF32 off): 6.7 TFLOP/s = 10.0% of "
            "NVIDIA H200's FP32 peak (67 TFLOP/s), 1.4% of its dense TF32 peak (494.7).") in text
    assert "`raw-torch-gpu-native` largest steady case B=256, T=100, U=512 (TF32 off): 8.04 TFLOP/s = 12.0% of" in text
    assert "1.6% of its dense TF32 peak" in text


def test_cpu_against_gpu_for_every_shape_with_the_crossover_batch(summary):
    _, text = summary
    assert "| GPU | CPU | T | U | B=1 | B=8 | B=64 | B=256 | GPU wins from |" in text
    assert "| keras-jax-gpu-auto | keras-jax-cpu-auto | 100 | 512 | 0.50 | 0.80 | 1.82 | 5.00 | B=64 |" in text
    assert "| raw-torch-gpu-native | raw-torch-cpu-native | 100 | 512 | noisy | 1.50 | 0.89 | 3.00 | B=256 |" in text


def test_the_gpu_summary_says_what_was_not_timed_and_draws_the_gpu_figures(summary):
    folder, text = summary
    assert "TensorFlow was not timed on the GPU" in text
    assert "still owed" not in text
    for name in ("gpu_speedup.png", "crossover_gpu.png", "keras_over_raw_gpu.png"):
        assert (folder / name).stat().st_size > 0, name
        assert f"]({name})" in text


@pytest.mark.parametrize("points, expected", [
    ([(1, 0.5), (8, 0.8), (64, 1.8), (256, 5.0)], "B=64"),
    ([(256, 3.0), (64, 0.9), (8, 1.5)], "B=256"),      # any order; a win below a loss does not count
    ([(1, 2.0), (8, 3.0)], "B=1"),
    ([(1, 0.5), (8, 1.0)], "never (to B=8)"),         # equal is no win
    ([], "-"),
])
def test_crossover_batch_rule(points, expected):
    assert crossover_batch(points) == expected


@pytest.mark.parametrize("gpu, cpu", [
    ("keras-jax-gpu-auto", "keras-jax-cpu-auto"),
    ("keras-torch-gpu-generic", "keras-torch-cpu-auto"),
    ("raw-jax-gpu-cudnn", "raw-jax-cpu-scan"),
    ("keras-jax-gpu-auto-tf32", "keras-jax-cpu-auto"),  # CPU cases never carry TF32
])
def test_each_gpu_group_is_compared_with_its_cpu_counterpart(gpu, cpu):
    assert cpu_counterpart(gpu) == cpu

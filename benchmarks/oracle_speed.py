"""How fast is the NumPy oracle? Its Bidirectional LSTM against ``torch.nn.LSTM(bidirectional=True)`` on the CPU.

    .venv/bin/python -m benchmarks.oracle_speed                   # float64 and float32, 15 repeats
    .venv/bin/python -m benchmarks.oracle_speed --repeats 31 --dtypes float64
    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.oracle_speed --torch-threads 1 --tag 1thread
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks.oracle_speed

One thread a side (the third line) is the steadiest comparison on a small shared
machine: a multi-threaded BLAS waits for its own threads whenever another
process holds a core, which makes the default run's spread large there.

(Where this machine sets ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` for old
OpenBLAS builds, unset both together to let NumPy's OpenBLAS pick its own
kernel; the results record both variables and NumPy's BLAS.)

One Bidirectional layer, batch 64, 100 timesteps, 16 features, 128 units,
``return_sequences``, concat, zero initial state, no mask, in the same process:

    forward            oracle: ``run_bidirectional(keep_cache=False)``, the inference path of
                       ``bidirectional_forward`` (no BPTT cache, as torch keeps none under no_grad)
                       torch:  ``lstm(x)`` under ``torch.no_grad()``
    forward+backward   oracle: ``run_bidirectional`` (keeping the cache) then ``lstm_backward`` of both directions
                       torch:  ``lstm(x)`` then ``out.backward(dy)`` (autograd)

with the same random upstream gradient ``dy`` (B, T, 2U). The oracle runs in
float64 (its own precision) and, for the float32 comparison only, on float32
arrays (its loops follow the dtype of their inputs). Each measurement: warm-up
calls, then ``--repeats`` timed calls; median and interquartile range. Ratios
are oracle / torch: below 1 the oracle is faster.

Targets (issue 3): forward ratio <= 1 in float64; forward+backward ratio <= 1.5.

Writes ``./results/bench/<machine>/oracle_speed[_<tag>].json`` and ``.csv`` atomically
(``<machine>`` as ``benchmarks.environment.machine_id`` names it; ``--out`` for another folder);
files already there are replaced only with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.destination import DEFAULT_RESULTS, check_new_files, check_out_folder
from keras_impl.options import UsageError, checked, int_in, positive_int
from keras_impl.files import atomic_write_csv, atomic_write_json
from reference.backward import lstm_backward
from reference.bidirectional import run_bidirectional

B, T, D, U = 64, 100, 16, 128


def timed(fn, repeats: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3), "iqr_s": float(q3 - q1),
            "repeats": repeats, "times_s": [float(t) for t in times]}


def oracle_functions(dtype, rng):
    """(forward, forward_backward) closures of the oracle on ``dtype`` arrays."""
    x = rng.normal(size=(B, T, D)).astype(dtype)
    weights = [(rng.uniform(-0.1, 0.1, (D, 4 * U)).astype(dtype), rng.uniform(-0.1, 0.1, (U, 4 * U)).astype(dtype),
                rng.uniform(-0.1, 0.1, (4 * U,)).astype(dtype)) for _ in range(2)]
    dy = rng.normal(size=(B, T, 2 * U)).astype(dtype)
    zeros = np.zeros((B, U), dtype)

    def forward(keep_cache=False):
        (y_f, y_b), _, caches = run_bidirectional(x, weights[0], weights[1], (zeros,) * 4, None, True,
                                                  keep_cache=keep_cache)
        return np.concatenate([y_f, y_b], axis=-1), caches

    def forward_backward():
        _, (cache_f, cache_b) = forward(keep_cache=True)
        grads_f = lstm_backward(cache_f, weights[0][0], weights[0][1], dy[..., :U])
        grads_b = lstm_backward(cache_b, weights[1][0], weights[1][1], dy[..., U:][:, ::-1])  # processing order
        return grads_f, grads_b

    return x, weights, dy, forward, forward_backward


def torch_functions(dtype, x, weights, dy):
    """The same layer in ``torch.nn.LSTM``, its weights laid out by ``keras_impl.convert.keras_to_torch``."""
    import torch

    from keras_impl.convert import keras_to_torch
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    lstm = torch.nn.LSTM(D, U, batch_first=True, bidirectional=True).to(tdtype)
    lstm.load_state_dict(keras_to_torch([*weights[0], *weights[1]], bidirectional=True, as_torch=True))
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

    def forward():
        with torch.no_grad():
            return lstm(tx)[0]

    def forward_backward():
        lstm.zero_grad(set_to_none=True)
        x_grad = tx.clone().requires_grad_(True)  # ask for dx too, as the oracle computes it
        out = lstm(x_grad)[0]
        out.backward(tdy)
        return x_grad.grad

    return lstm, forward, forward_backward


def check_agreement(dtype, oracle_forward, torch_forward) -> float:
    """Worst |oracle - torch| of the forward outputs: the two compute the same layer."""
    ours = oracle_forward()[0]
    theirs = torch_forward().numpy()
    return float(np.max(np.abs(ours - theirs)))


def environment() -> dict:
    import torch
    blas = {}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
    except TypeError:  # older NumPy: no mode argument
        pass
    return {
        "machine": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy_blas": blas,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "loadavg_1m": os.getloadavg()[0], "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def ratio_with_spread(oracle: dict, torch_: dict) -> dict:
    """Median ratio and the ratios of the quartiles (q1/q1, q3/q3): a rough band for the ratio."""
    return {"ratio": oracle["median_s"] / torch_["median_s"],
            "ratio_q1": oracle["q1_s"] / torch_["q1_s"], "ratio_q3": oracle["q3_s"] / torch_["q3_s"]}


def run(dtypes, repeats: int, warmup: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    records = []
    for name in dtypes:
        dtype = {"float64": np.float64, "float32": np.float32}[name]
        x, weights, dy, o_fwd, o_fwd_bwd = oracle_functions(dtype, rng)
        _, t_fwd, t_fwd_bwd = torch_functions(dtype, x, weights, dy)
        agreement = check_agreement(dtype, o_fwd, t_fwd)
        for what, ours, theirs in (("forward", o_fwd, t_fwd), ("forward+backward", o_fwd_bwd, t_fwd_bwd)):
            oracle_t, torch_t = timed(ours, repeats, warmup), timed(theirs, repeats, warmup)
            record = {"dtype": name, "what": what, "oracle": oracle_t, "torch": torch_t,
                      **ratio_with_spread(oracle_t, torch_t), "forward_max_abs_diff": agreement}
            records.append(record)
            print(f"{name:8s} {what:17s} oracle {oracle_t['median_s'] * 1e3:8.1f} ms (IQR {oracle_t['iqr_s'] * 1e3:5.1f})"
                  f"  torch {torch_t['median_s'] * 1e3:8.1f} ms (IQR {torch_t['iqr_s'] * 1e3:5.1f})"
                  f"  ratio {record['ratio']:.2f} [{record['ratio_q1']:.2f}, {record['ratio_q3']:.2f}]", flush=True)
    return {"shape": {"batch": B, "timesteps": T, "features": D, "units": U, "layer": "Bidirectional(LSTM) concat"},
            "environment": environment(), "records": records}


def result_paths(out_dir: Path, tag: str = "") -> tuple[Path, Path]:
    stem = f"oracle_speed_{tag}" if tag else "oracle_speed"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.csv"


def write(result: dict, out_dir: Path, tag: str = "") -> tuple[Path, Path]:
    json_path, csv_path = result_paths(out_dir, tag)
    atomic_write_json(json_path, result)
    atomic_write_csv(csv_path, ["dtype", "what", "oracle_median_s", "oracle_iqr_s", "torch_median_s", "torch_iqr_s",
                                "ratio", "ratio_q1", "ratio_q3", "repeats", "forward_max_abs_diff"],
                     [[r["dtype"], r["what"], r["oracle"]["median_s"], r["oracle"]["iqr_s"], r["torch"]["median_s"],
                       r["torch"]["iqr_s"], r["ratio"], r["ratio_q1"], r["ratio_q3"], r["oracle"]["repeats"],
                       r["forward_max_abs_diff"]] for r in result["records"]])
    return json_path, csv_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    # Numbers are read as text and checked below: a bad one is one line (argparse would print its usage too).
    parser.add_argument("--repeats", default="15", help="timed calls a case, at least 3 for quartiles (default 15)")
    parser.add_argument("--warmup", default="3", help="untimed calls first (default 3)")
    parser.add_argument("--torch-threads", default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--tag", default="", help="suffix of the results files, e.g. 1thread")
    parser.add_argument("--out", default=None, help=f"folder for the results (default {DEFAULT_RESULTS}/<machine>, "
                                                    "relative to the current folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace results files of the same name")
    args = parser.parse_args(argv)
    try:  # every check before torch is imported or anything is written
        args.repeats = checked(int_in("--repeats", 3), args.repeats)  # quartiles need 3
        args.warmup = checked(int_in("--warmup", 0), args.warmup)
        if args.torch_threads is not None:
            args.torch_threads = checked(positive_int("--torch-threads"), args.torch_threads)
        if not re.fullmatch(r"[A-Za-z0-9_.-]*", args.tag):
            raise UsageError(f"--tag must be letters, digits, '_', '.' or '-', got {args.tag!r}")
        out = check_out_folder(args.out)
        if not args.overwrite:
            check_new_files(list(result_paths(out, args.tag)))
    except UsageError as exc:
        print(f"oracle_speed: {exc}", file=sys.stderr)
        return 2
    if args.torch_threads is not None:
        import torch
        torch.set_num_threads(args.torch_threads)
    result = run(args.dtypes, args.repeats, args.warmup)
    paths = write(result, out, args.tag)
    print("wrote", *paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())

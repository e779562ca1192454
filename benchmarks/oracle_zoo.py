"""``bilstm bench oracle``: the oracle's forward against Keras-JAX's compiled float32 forward, on the test zoo.

    bilstm bench oracle                                     # every zoo model at its realistic size
    bilstm bench oracle --models bilstm_classifier crnn_ocr --repeats 7
    bilstm bench oracle --size small --skip-verify          # seconds: a smoke run
    bilstm bench oracle --skip-verify --save-models zoo     # also zoo/<model>.keras at the realistic size
    OPENBLAS_NUM_THREADS=1 taskset -c 1 bilstm bench oracle --tag 1thread   # one thread a side, one core

One thread a side (the last line: NumPy's OpenBLAS told so, and XLA's thread pool sized by the one CPU
the process may run on) is the steady comparison on a shared machine: there, a multi-threaded OpenBLAS
waits for its threads whenever another process holds a core, and the oracle's many small per-step
matrix products slow down up to twentyfold (2026-12-07, 2 cores at load 12: 21.5 s against 1.3 s).

For each model of ``keras_impl/verify/zoo.py`` (weights and inputs drawn from ``--seed``), in this one
process, on the same CPU (``JAX_PLATFORMS=cpu`` is set, also where a GPU is present):

    oracle     ``reference.layers.graph_forward`` on the ``LayerGraph`` that
               ``keras_impl.verify.describe.describe_model`` reads from the Keras model: NumPy, float64,
               every layer's output kept, its layers' independent parts on two threads (``reference/parallel.py``;
               ``--oracle-threads 1``: one after the other): what ``bilstm verify`` runs
    Keras-JAX  ``jax.jit`` of ``model.stateless_call(..., training=False)`` in float32, compiled and warmed
               up, timed to ``block_until_ready``
    verify     the wall time of ``bilstm verify MODEL.keras --backend jax --batch B`` in a fresh process
               (Keras's import, the load, both forwards, the table: what a user waits for), and its exit status

Each forward: ``--warmup`` untimed calls, then ``--repeats`` timed, in two blocks of calls back to back for
each forward, the blocks alternating (oracle, Keras-JAX, oracle, Keras-JAX: someone else's burst of load falls
on both sides), each block 0.3 s after the last call (OpenBLAS's threads spin on the cores for a while after
a product: a Keras-JAX call made at once ran beside them); the median and the quartiles of each. The ratio
is oracle / Keras-JAX (issue 17's target: at most 3 on the realistic sizes), with the ratios of the
quartiles as its band. A model whose layers the oracle does not implement yet is skipped, with verify's
refusal line, and the others run. The outputs of the two forwards are compared too (``max_rel_diff``:
max |oracle - Keras| / max(1, max |oracle|), as verify measures it), so that a fast wrong forward shows.

``--save-models DIR`` also writes each model as ``DIR/<model>.keras`` (the weights timed), to run ``bilstm verify``
on by hand (``bilstm verify DIR/speech_ctc.keras --batch 8``).

Writes ``oracle_zoo[_<tag>].json`` and ``.md`` (a table) atomically into ``./results/bench/<machine>/``
(``--out`` for another folder); files already there are replaced only with ``--overwrite``. Exit status 0,
or 1 when a model the oracle supports did not verify (verify's exit status was not 0).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.destination import check_new_files, check_out_folder
from benchmarks.environment import describe_machine
from benchmarks.oracle_speed import ratio_with_spread
from keras_impl.files import atomic_write_json, atomic_write_text
import keras_impl.interrupt as interrupt
from keras_impl.memory import keep_freed_memory
from keras_impl.threads import oracle_on_all_cores, oracle_workers
from keras_impl.options import UsageError, checked, int_in, seed
from keras_impl.verify import zoo

TARGET_RATIO = 3.0  # issue 17: the oracle within 3x of Keras-JAX's compiled float32 forward
VERIFY_TIMEOUT_S = 900


def add_arguments(parser) -> None:
    # Numbers are read as text and checked in run(): a bad one is one line with this command's prefix.
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help=f"zoo models to time (default: all, {', '.join(zoo.NAMES)})")
    parser.add_argument("--size", default="realistic", help="the zoo's size: realistic or small (default realistic)")
    parser.add_argument("--repeats", default="7", help="timed calls a forward, at least 3 for quartiles (default 7)")
    parser.add_argument("--warmup", default="2", help="untimed calls first, at least 1 (default 2: the jit compiles)")
    parser.add_argument("--seed", default="0", help="seed of the weights and inputs (default 0)")
    parser.add_argument("--skip-verify", action="store_true", help="do not time bilstm verify on each model")
    parser.add_argument("--oracle-threads", default=None,
                        help="threads for the oracle's independent parts, as bilstm verify runs it (default: 2 "
                             "where the process may use two CPUs, else 1; 1 runs them one after the other)")
    parser.add_argument("--save-models", metavar="DIR", default=None,
                        help="also write each model as DIR/<model>.keras, its weights those timed, for bilstm verify "
                             "to be run on by hand (default: none written)")
    parser.add_argument("--tag", help="suffix of the results files, e.g. 1thread (default: none)")
    parser.add_argument("--out", default=None, help="folder for the results (default results/bench/<machine>)")
    parser.add_argument("--overwrite", action="store_true", help="replace results files of the same name")


def result_paths(out: Path, tag: str = "") -> tuple[Path, Path]:
    stem = f"oracle_zoo_{tag}" if tag else "oracle_zoo"
    return out / f"{stem}.json", out / f"{stem}.md"


def check_arguments(args) -> None:
    """Every argument checked before Keras is imported or anything is written (UsageError: one line, exit 2)."""
    args.models = list(zoo.NAMES) if args.models is None else args.models
    unknown = [m for m in args.models if m not in zoo.ZOO]
    if unknown:
        raise UsageError(f"--models: unknown zoo model {unknown[0]!r}; expected some of {', '.join(zoo.NAMES)}")
    if len(set(args.models)) != len(args.models):
        raise UsageError("--models names a model twice")
    if args.size not in zoo.SIZES:
        raise UsageError(f"--size must be one of {', '.join(zoo.SIZES)}, got {args.size!r}")
    args.repeats = checked(int_in("--repeats", 3, 1000), args.repeats)
    args.warmup = checked(int_in("--warmup", 1, 100), args.warmup)
    args.seed = checked(seed("--seed"), args.seed)
    args.oracle_threads = (oracle_workers() if args.oracle_threads is None
                           else checked(int_in("--oracle-threads", 1, 64), args.oracle_threads))
    args.tag = args.tag or ""
    if not re.fullmatch(r"[A-Za-z0-9_.-]*", args.tag):
        raise UsageError(f"--tag must be letters, digits, '_', '.' or '-', got {args.tag!r}")
    args.out = check_out_folder(args.out)
    if args.save_models is not None:
        args.save_models = check_out_folder(args.save_models, "--save-models")
        if not args.overwrite:
            check_new_files([model_path(args.save_models, name) for name in args.models])
    if not args.overwrite:
        check_new_files(list(result_paths(args.out, args.tag)))


def keras_jax_forward(model, xs):
    """A closure running the model's compiled float32 forward on ``xs`` (in ``model.inputs`` order) to completion."""
    import jax
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    args = [jax.numpy.asarray(x) for x in xs]
    args = args if len(args) > 1 else args[0]

    @jax.jit
    def forward(trainable, non_trainable, x):
        y, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return y

    return lambda: forward(trainable, non_trainable, args).block_until_ready()


SETTLE_S = 0.3  # untimed pause before each block: longer than OpenBLAS's threads spin after a product
ROUNDS = 2  # blocks of each side, alternating


def timed_interleaved(functions, repeats: int, warmup: int) -> list[dict]:
    """``benchmarks.oracle_speed.timed``'s record for each of ``functions`` over ``repeats`` calls, made in
    ``ROUNDS`` blocks of calls back to back, the functions' blocks alternating, so that a burst of someone else's
    load on a shared machine falls on both sides of the ratio rather than on one side's whole run. Each
    block starts ``SETTLE_S`` after the last call: OpenBLAS's worker threads keep spinning on the cores for a
    while after a multi-threaded product (its THREAD_TIMEOUT, about 2^28 cycles), and a Keras-JAX call made at
    once shared the machine with them (crnn_ocr's forward 24.9 ms so, 15.9 ms alone: docs/benchmarks.md)."""
    for _ in range(warmup):
        for fn in functions:
            fn()
    times = [[] for _ in functions]
    blocks = [repeats // ROUNDS + (k < repeats % ROUNDS) for k in range(ROUNDS)]  # 7: 4 then 3
    for block in blocks:
        for fn, kept in zip(functions, times):
            time.sleep(SETTLE_S)
            for _ in range(block):
                start = time.perf_counter()
                fn()
                kept.append(time.perf_counter() - start)
    records = []
    for kept in times:
        q1, median, q3 = np.percentile(kept, [25, 50, 75])
        records.append({"median_s": float(median), "q1_s": float(q1), "q3_s": float(q3), "iqr_s": float(q3 - q1),
                        "repeats": repeats, "times_s": [float(t) for t in kept]})
    return records


def relative_difference(ours: np.ndarray, theirs) -> float:
    """max |oracle - Keras| / max(1, max |oracle|): verify's measure of one output."""
    theirs = np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs)) / max(1.0, float(np.max(np.abs(ours)))))


def model_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.keras"


def time_verify(model, batch: int) -> dict:
    """``bilstm verify`` of ``model`` (saved as .keras in a temporary folder) in a fresh process: wall time, exit
    status and its last line (the summary, or the refusal)."""
    with tempfile.TemporaryDirectory(prefix="bilstm-bench-oracle-") as folder:
        path = Path(folder) / f"{model.name}.keras"
        model.save(path)
        command = [sys.executable, "-m", "keras_impl.cli", "verify", str(path), "--backend", "jax",
                   "--batch", str(batch)]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S)
        wall = time.perf_counter() - start
    # the table's summary line (exit 0 or 1), or the refusal (exit 2, one line on standard error)
    lines = [line for line in (proc.stderr if proc.returncode == 2 else proc.stdout).splitlines() if line.strip()]
    return {"wall_s": wall, "exit": proc.returncode, "last_line": lines[-1] if lines else ""}


def bench_model(name: str, args) -> dict:
    """One zoo model's record: timings, ratio, agreement, verify; or ``skipped`` with verify's refusal."""
    from keras_impl.verify.describe import describe_model
    from keras_impl.verify.errors import VerifyRefusal
    from reference.layers import graph_forward
    dims = zoo.dims(name, args.size)
    model = zoo.build(name, args.size, seed=args.seed)
    xs = zoo.inputs(name, args.size, seed=args.seed)
    record = {"model": name, "size": args.size, "dims": dims,
              "inputs": [{"shape": list(x.shape), "dtype": str(x.dtype)} for x in xs],
              "parameters": int(model.count_params())}
    try:
        graph = describe_model(model).graph
    except VerifyRefusal as exc:
        return {**record, "skipped": str(exc)}
    output = graph.outputs[0]  # every zoo model has one output
    oracle = lambda: graph_forward(graph, xs)  # noqa: E731
    keras_forward = keras_jax_forward(model, xs)
    record["max_rel_diff"] = relative_difference(oracle()[output][0], keras_forward())
    record["oracle"], record["keras_jax"] = timed_interleaved((oracle, keras_forward), args.repeats, args.warmup)
    record.update(ratio_with_spread(record["oracle"], record["keras_jax"]))
    record["within_target"] = record["ratio"] <= TARGET_RATIO
    if not args.skip_verify:
        record["verify"] = time_verify(model, dims["batch"])
    if getattr(args, "save_models", None) is not None:
        args.save_models.mkdir(parents=True, exist_ok=True)
        staged = args.save_models / f".{name}.partial.keras"  # Keras writes in place: staged, then renamed
        model.save(staged)
        staged.replace(model_path(args.save_models, name))
    return record


def progress_line(r: dict) -> str:
    if "skipped" in r:
        return f"{r['model']:18s} skipped: {r['skipped']}"
    o, k = r["oracle"], r["keras_jax"]
    line = (f"{r['model']:18s} oracle {o['median_s'] * 1e3:9.1f} ms (IQR {o['iqr_s'] * 1e3:6.1f})"
            f"  keras-jax {k['median_s'] * 1e3:8.1f} ms (IQR {k['iqr_s'] * 1e3:5.1f})"
            f"  ratio {r['ratio']:5.2f} [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]  diff {r['max_rel_diff']:.1e}")
    if "verify" in r:
        line += f"  verify {r['verify']['wall_s']:5.1f} s (exit {r['verify']['exit']})"
    return line


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# Oracle vs Keras-JAX forward on the test zoo ({result['size']} sizes)", "",
             f"{env['cpu']}, {env['cpu_count']} cores, load {env['loadavg_1m']:.2f}; numpy {env['numpy']}, "
             f"jax {env['jax']}, keras {env['keras']}; {result['repeats']} repeats after {result['warmup']} "
             f"warm-up calls, seed {result['seed']}; {env['timestamp']}.", "",
             "Median ms (interquartile range); ratio = oracle / Keras-JAX, its band the ratios of the quartiles; "
             f"target: ratio <= {TARGET_RATIO:g}. verify: wall time of `bilstm verify` (fresh process, jax).", "",
             "| model | inputs | oracle ms | Keras-JAX ms | ratio [q1, q3] | <= 3x | max rel diff | verify s (exit) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["records"]:
        shapes = " + ".join("x".join(map(str, i["shape"])) for i in r["inputs"])
        if "skipped" in r:
            lines.append(f"| {r['model']} | {shapes} | skipped: {r['skipped'].replace('|', '/')} | | | | | |")
            continue
        o, k = r["oracle"], r["keras_jax"]
        verify = f"{r['verify']['wall_s']:.1f} ({r['verify']['exit']})" if "verify" in r else "-"
        lines.append(f"| {r['model']} | {shapes} | {o['median_s'] * 1e3:.1f} ({o['iqr_s'] * 1e3:.1f}) | "
                     f"{k['median_s'] * 1e3:.1f} ({k['iqr_s'] * 1e3:.1f}) | {r['ratio']:.2f} [{r['ratio_q1']:.2f}, "
                     f"{r['ratio_q3']:.2f}] | {'yes' if r['within_target'] else 'NO'} | {r['max_rel_diff']:.1e} | "
                     f"{verify} |")
    if result.get("not_reached"):
        lines += ["", f"Not reached (the run stopped first): {', '.join(result['not_reached'])}."]
    return "\n".join(lines) + "\n"


def environment() -> dict:
    import jax
    import keras
    return {**describe_machine(), "numpy": np.__version__, "jax": jax.__version__, "keras": keras.version(),
            "loadavg_1m": os.getloadavg()[0], "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS"), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run(args) -> int:
    check_arguments(args)
    from keras_impl.backend import BackendError, select_backend
    os.environ["JAX_PLATFORMS"] = "cpu"  # the oracle's CPU, also where a GPU is present (and verify's, inherited)
    args.heap_kept = keep_freed_memory()  # as bilstm verify runs the oracle (keras_impl/memory.py)
    try:
        select_backend("jax")  # Keras-JAX is what the oracle is held to; before Keras is imported
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    from keras_impl.backend import device_name, print_header
    print_header("bench oracle", backends="jax", device=device_name(), dtype="float32 (Keras), float64 (oracle)",
                 chosen_by="the one this benchmark times")
    records = []
    json_path, md_path = result_paths(args.out, args.tag)
    for name in args.models:
        load_before = os.getloadavg()[0]
        with oracle_on_all_cores(args.oracle_threads):  # as bilstm verify runs the oracle (keras_impl/threads.py)
            record = bench_model(name, args)
        record["loadavg_1m"] = [load_before, os.getloadavg()[0]]  # the machine's load as it was timed: before, after
        records.append(record)
        print(progress_line(record), flush=True)
        # rewritten after every model: a run stopped half-way keeps the models it finished, marked incomplete
        result = {"what": "oracle forward (NumPy float64) vs Keras-JAX jit forward (float32), test zoo",
                  "size": args.size, "repeats": args.repeats, "warmup": args.warmup, "seed": args.seed,
                  "target_ratio": TARGET_RATIO, "environment": {**environment(), "freed_memory_kept": args.heap_kept,
                                                  "oracle_threads": args.oracle_threads},
                  "records": records,
                  "complete": len(records) == len(args.models),
                  "not_reached": args.models[len(records):]}
        atomic_write_json(json_path, result)
        atomic_write_text(md_path, markdown(result))
        interrupt.check()  # a Ctrl-C a garbage-collection callback swallowed stops here, the finished models saved
    print("wrote", json_path, md_path)
    failed = [r["model"] for r in records if r.get("verify", {}).get("exit", 0) != 0]
    if failed:
        print(f"verify did not pass on: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

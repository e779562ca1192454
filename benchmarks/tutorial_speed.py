"""How fast the tutorial's stream trains: fast mode, faithful mode, and (on JAX) a raw-JAX loop.

    KERAS_BACKEND=jax .venv/bin/python -m benchmarks.tutorial_speed               # ~1 minute on 2 cores
    KERAS_BACKEND=jax .venv/bin/python -m benchmarks.tutorial_speed --cli         # + bilstm compare/reproduce wall times
    KERAS_BACKEND=tensorflow .venv/bin/python -m benchmarks.tutorial_speed --updates 200

The tutorial's Bidirectional model (LSTM(20), concat, T = 10), one Adam update
a sequence, batch 1. Steady state: every timed call runs after a warm-up call
of the same shape (compilation excluded), the device is synchronised before the
clock is read, each figure is the median of ``--repeats`` calls with its
interquartile range, in microseconds per update.

- faithful: ``train_stream(mode="faithful")``, one ``model.fit`` per sequence.
- fast: ``train_stream(mode="fast")`` (JAX: one ``lax.scan`` over all updates).
- raw-jax (JAX only): the same model, loss (clipped binary cross-entropy) and
  Adam (Keras's form) written directly in JAX, ``lax.scan`` over updates,
  jitted once: the floor for a Keras-free implementation. Its first losses are
  checked against the fast mode's from the same weights and data.
- seeds (JAX only): ``training_jax.train_many`` for 1 and for 20 seeds, 250
  updates: 20 seeds trained together in one program.
- ``--cli`` adds the wall time (a fresh process each: import, compile, train,
  write) of ``bilstm compare --seeds 1`` and ``--seeds 20`` and of ``bilstm reproduce``.

Writes ``./results/bench/<machine>/tutorial_speed_<backend>.json`` (``--out`` for another folder;
an existing file is replaced only with ``--overwrite``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.destination import DEFAULT_RESULTS, check_new_files, check_out_folder
from keras_impl.options import UsageError, checked, positive_int
from keras_impl.files import atomic_write_json


def stats_us(seconds: list[float], updates: int) -> dict:
    per = np.asarray(seconds) / updates * 1e6
    q1, med, q3 = np.percentile(per, [25, 50, 75])
    return {"median_us": float(med), "iqr_us": float(q3 - q1), "repeats": len(per)}


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # every fn returns host NumPy arrays: the device is synchronised inside
        out.append(time.perf_counter() - start)
    return out


def raw_jax_loop(weights, xs, ys):
    """A jitted ``lax.scan`` over updates: forward, grad, Adam. Returns (run, initial state)."""
    import jax
    import jax.numpy as jnp

    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7

    def lstm(x, W, R, b, reverse):  # x (T, D) -> (T, U), outputs time-aligned
        U = R.shape[0]
        xw = x @ W + b  # (T, 4U): the input projection of every step at once

        def cell(carry, z_x):
            h, c = carry
            z = z_x + h @ R
            i, f, g, o = jnp.split(z, 4)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        _, hs = jax.lax.scan(cell, (jnp.zeros(U), jnp.zeros(U)), xw, reverse=reverse)
        return hs

    def loss_fn(w, x, y):  # x (T, 1), y (T, 1)
        h = jnp.concatenate([lstm(x, *w[0:3], False), lstm(x, *w[3:6], True)], axis=-1)  # (T, 2U)
        p = jnp.clip(jax.nn.sigmoid(h @ w[6] + w[7]), 1e-7, 1 - 1e-7)
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    def step(state, batch):
        w, m, v, t = state
        loss, g = jax.value_and_grad(loss_fn)(w, *batch)
        t = t + 1
        alpha = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        w = [wi - alpha * mi / (jnp.sqrt(vi) + eps) for wi, mi, vi in zip(w, m, v)]
        return (w, m, v, t), loss

    @jax.jit
    def run(state, xs, ys):
        state, losses = jax.lax.scan(step, state, (xs, ys))
        return state, losses

    w = [jnp.asarray(a, jnp.float32) for a in weights]
    state = (w, [jnp.zeros_like(a) for a in w], [jnp.zeros_like(a) for a in w], jnp.float32(0))
    return run, state


def measure(updates: int, repeats: int, faithful_updates: int) -> dict:
    import keras

    from keras_impl.backend import backend_info
    from keras_impl.models import build_model
    from keras_impl.training import train_stream
    from reference import ModelSpec, keras_init_weights
    from reference.problem import make_sequences

    spec = ModelSpec()  # the tutorial's Bidirectional model
    rng = np.random.default_rng(0)
    weights = [w.astype(np.float32) for w in keras_init_weights(spec, rng)]
    xs, ys = make_sequences(updates, spec.timesteps, rng)
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    result = {"backend_info": backend_info(), "spec": repr(spec), "updates_per_call": updates,
              "faithful_updates_per_call": faithful_updates}

    model = build_model(spec)
    model.set_weights(weights)
    fast_first = train_stream(model, xs, ys, mode="fast")  # warm-up: compiles
    result["fast"] = stats_us(timed(lambda: train_stream(model, xs, ys, mode="fast"), repeats), updates)

    model = build_model(spec)
    model.set_weights(weights)
    train_stream(model, xs[:2], ys[:2], mode="faithful")  # warm-up: builds fit's train function
    part = slice(0, faithful_updates)
    result["faithful"] = stats_us(timed(lambda: train_stream(model, xs[part], ys[part], mode="faithful"), repeats),
                                  faithful_updates)
    result["faithful_over_fast"] = result["faithful"]["median_us"] / result["fast"]["median_us"]

    if keras.backend.backend() == "jax":
        import jax
        run, state = raw_jax_loop(weights, xs, ys)
        _, raw_losses = run(state, xs, ys)
        result["raw_jax_vs_fast_first_losses_max_abs"] = float(np.max(np.abs(np.asarray(raw_losses)[:20] - fast_first[:20])))
        result["raw_jax"] = stats_us(timed(lambda: jax.block_until_ready(run(state, xs, ys)), repeats), updates)
        result["fast_over_raw_jax"] = result["fast"]["median_us"] / result["raw_jax"]["median_us"]
        result["seeds"] = seeds_scaling(spec, repeats)
    return result


def seeds_scaling(spec, repeats: int, updates: int = 250) -> dict:
    """``train_many`` wall time for 1 and for 20 seeds (compiled once each, then timed)."""
    from keras_impl import training_jax
    from keras_impl.models import build_model
    from keras_impl.training import ensure_compiled
    from reference import keras_init_weights
    from reference.problem import make_sequences

    out = {}
    for seeds in (1, 20):
        rng = np.random.default_rng(seeds)
        weights = [[w.astype(np.float32) for w in keras_init_weights(spec, rng)] for _ in range(seeds)]
        data = [make_sequences(updates, spec.timesteps, rng) for _ in range(seeds)]
        xs, ys = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
        model = build_model(spec, use_cudnn=False)  # as the experiments build it (vmap cannot batch cuDNN calls)
        ensure_compiled(model)
        start = time.perf_counter()
        training_jax.train_many(model, weights, xs, ys)
        compile_and_run = time.perf_counter() - start
        times = timed(lambda: training_jax.train_many(model, weights, xs, ys), repeats)
        out[f"seeds_{seeds}"] = {"first_call_s": compile_and_run, "steady_s": float(np.median(times)),
                                 "per_seed_update_us": float(np.median(times)) / (seeds * updates) * 1e6}
    out["steady_ratio_20_over_1"] = out["seeds_20"]["steady_s"] / out["seeds_1"]["steady_s"]
    return out


def cli_wall_times(backend: str) -> dict:
    """Fresh processes: bilstm compare --seeds 1 / 20 and bilstm reproduce (defaults), wall seconds."""
    exe = Path(sys.executable).with_name("bilstm")
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in (("compare_seeds_1", ["compare", "--seeds", "1"]), ("compare_seeds_20", ["compare", "--seeds", "20"]),
                           ("reproduce_defaults", ["reproduce"])):
            start = time.perf_counter()
            subprocess.run([str(exe), *argv, "--backend", backend, "--out", f"{tmp}/{name}"], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[name] = time.perf_counter() - start
    out["compare_ratio_20_over_1"] = out["compare_seeds_20"] / out["compare_seeds_1"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Numbers are read as text and checked below: a bad one is one line (argparse would print its usage too).
    parser.add_argument("--updates", default="1000", help="updates a fast call (default 1000)")
    parser.add_argument("--faithful-updates", default="200", help="updates a faithful call (default 200)")
    parser.add_argument("--repeats", default="5", help="timed calls (default 5)")
    parser.add_argument("--cli", action="store_true", help="also time bilstm compare (1 and 20 seeds) and reproduce")
    parser.add_argument("--out", default=None, help=f"folder (default {DEFAULT_RESULTS}/<machine>, relative to the current folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace this backend's results file if it exists")
    args = parser.parse_args(argv)
    # Every check before Keras is imported or anything is written; the backend is read as Keras will read it.
    from keras_impl.backend import BackendError, select_backend
    try:
        for name in ("updates", "faithful_updates", "repeats"):
            option = f"--{name.replace('_', '-')}"
            setattr(args, name, checked(positive_int(option), getattr(args, name)))
        out = check_out_folder(args.out)
        backend = select_backend(None)
        path = out / f"tutorial_speed_{backend}.json"
        if not args.overwrite:
            check_new_files([path])
    except (UsageError, BackendError) as exc:
        print(f"tutorial_speed: {exc}", file=sys.stderr)
        return 2
    result = measure(args.updates, args.repeats, args.faithful_updates)
    if args.cli:
        result["cli_wall_s"] = cli_wall_times(backend)
    atomic_write_json(path, result)
    print(f"backend {backend} on {result['backend_info']['device']}, us per update: median (IQR)")
    for name in ("faithful", "fast", "raw_jax"):
        if name in result:
            print(f"  {name:9s} {result[name]['median_us']:9.1f} ({result[name]['iqr_us']:.1f})")
    print(f"  faithful / fast = {result['faithful_over_fast']:.1f}x")
    if "raw_jax" in result:
        print(f"  fast / raw-jax  = {result['fast_over_raw_jax']:.2f}x  (first 20 losses agree to "
              f"{result['raw_jax_vs_fast_first_losses_max_abs']:.1e})")
        s = result["seeds"]
        print(f"  train_many 250 updates: 1 seed {s['seeds_1']['steady_s'] * 1e3:.1f} ms, 20 seeds "
              f"{s['seeds_20']['steady_s'] * 1e3:.1f} ms ({s['steady_ratio_20_over_1']:.2f}x); first calls "
              f"{s['seeds_1']['first_call_s']:.1f} s / {s['seeds_20']['first_call_s']:.1f} s")
    if "cli_wall_s" in result:
        c = result["cli_wall_s"]
        print(f"  bilstm compare --seeds 1: {c['compare_seeds_1']:.1f} s, --seeds 20: {c['compare_seeds_20']:.1f} s "
              f"({c['compare_ratio_20_over_1']:.2f}x); bilstm reproduce: {c['reproduce_defaults']:.1f} s")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

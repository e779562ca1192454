"""Run one experiment: several models, many seeds, paired, resumable.

Seeds. Seed s gives three independent generators (``SeedSequence(s).spawn(3)``):
the training stream (``updates`` sequences), the held-out set and the initial
weights. Every model of an experiment sees the same stream and held-out set for
a seed (the comparison is paired), and draws its initial weights with
``reference.keras_init_weights`` (Keras's distributions) from the same weight
generator, so that models whose first arrays have the same shapes (the LSTM
and each half of the Bidirectional layer, the merge modes' recurrent layers)
start from the same numbers too.

Training. On JAX in fast mode all pending seeds of one model train in one
compiled program (``training_jax.train_many``: ``vmap`` over seeds of a
``scan`` over updates), so each architecture compiles once. Elsewhere, and in
faithful mode, seeds run one after another on one model whose weights and
optimizer state are reset to fresh values before every seed.

Cells. Every model of an experiment uses one recurrent cell, ``lstm`` (the
tutorial's), ``gru`` or ``simple_rnn``; the model names say it (``lstm``,
``lstm_reversed``, ``bilstm``; ``gru``, ``gru_reversed``, ``bigru``; ``simple_rnn``,
``simple_rnn_reversed``, ``bisimple_rnn``; merge modes ``bigru_sum`` ...).

Results. One JSON file a (model, seed) under ``out/runs/<model>/``, written
atomically the moment that run is done, stamped with a fingerprint of
everything that determines it, the cell included, and sealed with a checksum of its content.
``resume=True`` reuses a run whose file is whole (``check_record``: the same fingerprint, model
and seed, ``updates`` finite losses and accuracies, held-out accuracies in [0, 1], the checksum
matching) and reruns, with a one-line notice, any other.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference import CELLS, DIRECTIONS, ModelSpec, keras_init_weights
from reference.problem import make_sequences, make_variable_sequences, mask_from_lengths

from keras_impl import interrupt
from keras_impl.files import atomic_write_json, json_safe

FIXED_TIMESTEPS = 10       # the tutorial's n
VARIABLE_MAX_LENGTH = 20   # variable-length sequences: 5 .. 20 steps, zero-padded to 20
VARIABLE_MIN_LENGTH = 5
UNITS = 20


CELL_LABELS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}  # as Keras names the layers


def _check_cell(cell) -> None:
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")


def model_spec(direction: str, *, cell: str = "lstm", merge_mode: str = "concat", layers: int = 1,
               variable_length: bool = False) -> ModelSpec:
    """The tutorial's models: ``direction`` 'forward', 'backward' (reversed) or 'bidirectional' (with
    ``merge_mode``), of ``cell``'s layer with Keras's default options."""
    _check_cell(cell)
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
    return ModelSpec(timesteps=VARIABLE_MAX_LENGTH if variable_length else FIXED_TIMESTEPS, features=1,
                     units=(UNITS,) * layers, direction=direction, merge_mode=merge_mode,
                     mask_value=0.0 if variable_length else None, cell=cell)


def model_name(direction: str, cell: str = "lstm", merge_mode: str | None = None) -> str:
    """The folder and table name of a model: 'gru', 'gru_reversed', 'bigru', 'bigru_sum' (merge mode given)."""
    _check_cell(cell)
    name = {"forward": cell, "backward": f"{cell}_reversed", "bidirectional": f"bi{cell}"}[direction]
    return f"{name}_{merge_mode}" if merge_mode is not None else name


def model_label(spec: ModelSpec, merge_mode: bool = False) -> str:
    """A model in words, for figures: 'GRU', 'reversed GRU', 'Bidirectional GRU' (+ ' (sum)')."""
    cell = CELL_LABELS[spec.cell]
    label = {"forward": cell, "backward": f"reversed {cell}", "bidirectional": f"Bidirectional {cell}"}[spec.direction]
    return f"{label} ({spec.merge_mode})" if merge_mode and spec.bidirectional else label


@dataclass(frozen=True)
class Experiment:
    name: str                                  # "compare", "merge-modes", "demo-bilstm", ...
    models: tuple[tuple[str, ModelSpec], ...]  # (model name, spec), in plotting order
    seeds: int
    updates: int
    mode: str = "fast"
    heldout: int = 1000
    variable_length: bool = False
    layers: int = 1

    def __post_init__(self):
        """Every field checked, by name, before anything runs (model names become folder names)."""
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty folder name, got {self.name!r}")
        if not isinstance(self.models, tuple) or not self.models:
            raise ValueError(f"models must be a non-empty tuple of (name, ModelSpec), got {self.models!r:.80}")
        names = []
        for entry in self.models:
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], ModelSpec)):
                raise TypeError(f"models must hold (name, ModelSpec) pairs, got {entry!r:.80}")
            if not isinstance(entry[0], str) or not entry[0] or entry[0] in (".", "..") or "/" in entry[0]:
                raise ValueError(f"models: a model name must be a folder name, got {entry[0]!r}")
            names.append(entry[0])
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be distinct, got {names}")
        for field in ("seeds", "updates", "heldout", "layers"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if self.mode not in ("fast", "faithful"):
            raise ValueError(f"unknown mode {self.mode!r}; expected 'fast' or 'faithful'")
        if not isinstance(self.variable_length, bool):
            raise TypeError(f"variable_length must be True or False, got {self.variable_length!r}")

    def fingerprint(self, model_name: str, spec: ModelSpec, backend: str) -> dict:
        """Everything a run's numbers depend on (not the number of seeds: seed s is the same run in any sweep)."""
        return {"experiment": self.name, "model": model_name, "cell": spec.cell, "spec": repr(spec),
                "backend": backend, "mode": self.mode, "updates": self.updates, "heldout": self.heldout,
                "variable_length": self.variable_length, "data_version": 1}

    @property
    def cell(self) -> str:
        """The recurrent cell of the experiment's models ('mixed' if they differ, which no command does)."""
        cells = {spec.cell for _, spec in self.models}
        return cells.pop() if len(cells) == 1 else "mixed"


@dataclass
class SeedData:
    xs: np.ndarray          # (N, T, 1) training stream
    ys: np.ndarray          # (N, T, 1)
    x_heldout: np.ndarray   # (M, T, 1)
    y_heldout: np.ndarray   # (M, T, 1)
    mask_heldout: np.ndarray | None  # (M, T) valid steps, None for fixed length
    weight_seed: np.random.SeedSequence


def seed_data(seed: int, updates: int, heldout: int, variable_length: bool) -> SeedData:
    stream, held, weights = np.random.SeedSequence(seed).spawn(3)
    if variable_length:
        kw = dict(min_length=VARIABLE_MIN_LENGTH, max_length=VARIABLE_MAX_LENGTH)
        xs, ys, _ = make_variable_sequences(updates, np.random.default_rng(stream), **kw)
        xh, yh, lh = make_variable_sequences(heldout, np.random.default_rng(held), **kw)
        mask = mask_from_lengths(lh, VARIABLE_MAX_LENGTH)
    else:
        xs, ys = make_sequences(updates, FIXED_TIMESTEPS, np.random.default_rng(stream))
        xh, yh = make_sequences(heldout, FIXED_TIMESTEPS, np.random.default_rng(held))
        mask = None
    return SeedData(xs, ys, xh, yh, mask, weights)


def initial_weights(spec: ModelSpec, data: SeedData) -> list[np.ndarray]:
    return [w.astype(np.float32) for w in keras_init_weights(spec, np.random.default_rng(data.weight_seed))]


def run_path(out: Path, model_name: str, seed: int) -> Path:
    return out / "runs" / model_name / f"seed_{seed:04d}.json"


def check_record(record, fingerprint: dict, model_name: str, seed: int, updates: int) -> str | None:
    """Why ``record`` cannot stand for run (model_name, seed) of these settings; None when it is whole.

    Whole: a JSON object with this fingerprint's cell, this fingerprint, model and seed; ``loss`` and
    ``accuracy`` lists of exactly ``updates`` finite numbers (losses >= 0,
    accuracies in [0, 1]); held-out step and sequence accuracies in [0, 1]; a
    finite, non-negative ``train_wall_s``; an ``example`` with its four lists of
    one length; and a ``checksum`` that matches its content (``content_checksum``):
    an edited record, or one from before records carried a checksum, is rerun.
    """
    if not isinstance(record, dict):
        return f"not a JSON object but a JSON {type(record).__name__}"
    # The cell first, by name: a run of another cell must never stand in for this one.
    if "cell" not in record:
        return "names no cell (written before --cell existed)"
    if record["cell"] != fingerprint.get("cell"):
        return f"made with the {record['cell']!r} cell, not {fingerprint.get('cell')!r}"
    if record.get("fingerprint") != fingerprint:
        return "made with other settings (its fingerprint differs)"
    if record.get("model") != model_name or record.get("seed") != seed or isinstance(record.get("seed"), bool):
        return f"holds model {record.get('model')!r} seed {record.get('seed')!r}, not {model_name!r} seed {seed}"
    for key, low, high in (("loss", 0.0, math.inf), ("accuracy", 0.0, 1.0)):
        values = record.get(key)
        if not isinstance(values, list) or len(values) != updates:
            size = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
            return f"{key!r} must be a list of {updates} numbers (one an update), found {size}"
        for k, v in enumerate(values):
            if not _number_in(v, low, high):
                return f"{key}[{k}] is {v!r}, not a finite number in [{low:g}, {high:g}]"
    for key in ("heldout_step_accuracy", "heldout_sequence_accuracy"):
        if not _number_in(record.get(key), 0.0, 1.0):
            return f"{key!r} is {record.get(key)!r}, not a number in [0, 1]"
    if not _number_in(record.get("train_wall_s"), 0.0, math.inf):
        return f"'train_wall_s' is {record.get('train_wall_s')!r}, not a finite number >= 0"
    example = record.get("example")
    lists = [example.get(k) for k in EXAMPLE_KEYS] if isinstance(example, dict) else []
    if len(lists) != len(EXAMPLE_KEYS) or not all(isinstance(v, list) for v in lists) \
            or len({len(v) for v in lists}) != 1 or not lists[0]:
        return f"'example' must hold the lists {', '.join(EXAMPLE_KEYS)} of one length"
    # Last, so that a record damaged in a way named above says so; any other change is caught here.
    if "checksum" not in record:
        return "has no checksum (written before records carried one): its numbers cannot be told from edited ones"
    if record["checksum"] != content_checksum(record):
        return "its content does not match its checksum (edited or damaged since it was written)"
    return None


def _number_in(value, low: float, high: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high)


def load_finished(out: Path, model_name: str, seed: int, fingerprint: dict, updates: int,
                  notify=None) -> dict | None:
    """The record of a finished run, or None (no file, or one that is not whole: ``notify`` is told why)."""
    path = run_path(out, model_name, seed)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except ValueError as exc:
        reason = f"not valid JSON ({exc})"
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or exc})"
    else:
        reason = check_record(record, fingerprint, model_name, seed, updates)
        if reason is None:
            return record
    if notify is not None:
        notify(f"{path}: {reason}; running it again")
    return None


EXAMPLE_KEYS = ("x", "expected", "predicted", "probability")


def _evaluate(probabilities, data: SeedData) -> dict:
    from .metrics import heldout_accuracy
    step, sequence = heldout_accuracy(probabilities, data.y_heldout, data.mask_heldout)
    valid = slice(None) if data.mask_heldout is None else data.mask_heldout[0]
    return {"heldout_step_accuracy": step, "heldout_sequence_accuracy": sequence,
            "example": {"x": data.x_heldout[0, valid, 0].round(4).tolist(),
                        "expected": data.y_heldout[0, valid, 0].astype(int).tolist(),
                        "predicted": (probabilities[0, valid, 0] > 0.5).astype(int).tolist(),
                        "probability": probabilities[0, valid, 0].round(4).tolist()}}


def _record(fingerprint, model_name, seed, logs_loss, logs_accuracy, evaluation, wall_s) -> dict:
    return sealed({"fingerprint": fingerprint, "model": model_name, "cell": fingerprint["cell"], "seed": seed,
                   "loss": [float(v) for v in logs_loss], "accuracy": [float(v) for v in logs_accuracy],
                   "train_wall_s": wall_s, **evaluation})


def content_checksum(record: dict) -> str:
    """SHA-256 of the record's content (every field but ``checksum``), in canonical JSON: what ``sealed`` stamps
    and ``check_record`` recomputes, so that a record edited by hand (a held-out accuracy made plausible) is
    rerun, not reused. It guards against edits and damage, not against someone who recomputes it."""
    content = json_safe({k: v for k, v in record.items() if k != "checksum"})  # as the file holds it
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def sealed(record: dict) -> dict:
    """``record`` with its ``checksum``."""
    return {**record, "checksum": content_checksum(record)}


def _train_batched_jax(model, spec, pending, datas):
    """All pending seeds of one model in one program (JAX, fast mode): (seed, loss, accuracy, evaluation, wall)."""
    from keras_impl import training_jax
    weights = [initial_weights(spec, datas[s]) for s in pending]
    xs = np.stack([datas[s].xs for s in pending])
    ys = np.stack([datas[s].ys for s in pending])
    start = time.perf_counter()
    logs, final = training_jax.train_many(model, weights, xs, ys)
    probabilities = training_jax.predict_many(model, final, np.stack([datas[s].x_heldout for s in pending]))
    wall = (time.perf_counter() - start) / len(pending)
    for i, s in enumerate(pending):
        yield s, logs["loss"][i], logs["accuracy"][i], _evaluate(probabilities[i], datas[s]), wall


def _train_one(model, fresh_optimizer, spec, experiment, seed, data):
    """One seed on a reused model: fresh weights and optimizer state, then train_stream and predict."""
    from keras_impl.training import train_stream_logs
    model.set_weights(initial_weights(spec, data))
    if fresh_optimizer is not None:
        for variable, value in zip(model.optimizer.variables, fresh_optimizer):
            variable.assign(value)
    start = time.perf_counter()
    logs = train_stream_logs(model, data.xs, data.ys, mode=experiment.mode)
    probabilities = np.asarray(model.predict(data.x_heldout.astype(np.float32), batch_size=len(data.x_heldout), verbose=0))
    return seed, logs["loss"], logs["accuracy"], _evaluate(probabilities, data), time.perf_counter() - start


def _train_sequentially(model, fresh_optimizer, spec, experiment, pending, datas):
    """Seeds one after another, each yielded as soon as it is done (so that it is saved at once)."""
    for s in pending:
        yield _train_one(model, fresh_optimizer, spec, experiment, s, datas[s])


_TEMPLATES: dict = {}


def template_model(spec: ModelSpec, data: SeedData):
    """One compiled model a spec for the whole process, with its fresh optimizer state.

    Every run resets the weights and the optimizer state, so one model serves every
    seed and every experiment that uses the spec, and its compiled programs (the
    JAX scan, the TF loop, Keras's own functions) are built once.
    """
    if spec not in _TEMPLATES:
        import keras

        from keras_impl.models import build_model
        from keras_impl.training_core import build_training_state, ensure_compiled
        # JAX on a GPU would take the cuDNN path, which flips go_backwards outputs back to time order
        # (keras/src/backend/jax/rnn.py, Keras 3.15.1: not the tutorial's reversed LSTM) and is a custom
        # call that jax.vmap cannot batch. The generic path is the same model on every device.
        # SimpleRNN has no cuDNN path (and no use_cudnn argument).
        kwargs = {"use_cudnn": False} if keras.backend.backend() == "jax" and spec.cell != "simple_rnn" else {}
        model = build_model(spec, **kwargs)
        ensure_compiled(model)
        build_training_state(model, data.xs[:1].astype(np.float32), data.ys[:1].astype(np.float32), None)
        _TEMPLATES[spec] = (model, [np.array(v.numpy()) for v in model.optimizer.variables])
    return _TEMPLATES[spec]


def _print_notice(message: str) -> None:
    print(message, file=sys.stderr)


def run_experiment(experiment: Experiment, out: Path, *, resume: bool, progress=None,
                   notify=_print_notice) -> dict[str, list[dict]]:
    """Train every (model, seed) not already finished; the records of all of them, by model name.

    Each run's record is written (atomically) the moment the run is done, so an
    interruption loses at most the runs in flight. With ``resume``, a record
    already on disk is reused only when ``check_record`` finds it whole and made
    with these settings; any other is run again, and ``notify`` gets one line
    naming the file and why. ``progress.update(n)`` is called as runs finish.
    """
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    out = Path(out)
    import keras

    backend = keras.backend.backend()
    datas = {}
    records: dict[str, list[dict]] = {}
    for model_name, spec in experiment.models:
        fingerprint = experiment.fingerprint(model_name, spec, backend)
        done = {}
        if resume:
            for s in range(experiment.seeds):
                record = load_finished(out, model_name, s, fingerprint, experiment.updates, notify)
                if record is not None:
                    done[s] = record
        if progress is not None and done:
            progress.update(len(done))
        pending = [s for s in range(experiment.seeds) if s not in done]
        if pending:
            for s in pending:
                if s not in datas:
                    datas[s] = seed_data(s, experiment.updates, experiment.heldout, experiment.variable_length)
            model, fresh_optimizer = template_model(spec, datas[pending[0]])
            if backend == "jax" and experiment.mode == "fast":
                results = _train_batched_jax(model, spec, pending, datas)
            else:
                results = _train_sequentially(model, fresh_optimizer, spec, experiment, pending, datas)
            for s, loss, accuracy, evaluation, wall in results:
                record = _record(fingerprint, model_name, s, loss, accuracy, evaluation, wall)
                atomic_write_json(run_path(out, model_name, s), record)  # saved before anything else can fail
                done[s] = record
                if progress is not None:
                    progress.update(1)
                interrupt.check()  # a Ctrl-C whose KeyboardInterrupt a callback swallowed stops here, run saved
        records[model_name] = [done[s] for s in range(experiment.seeds)]
    return records

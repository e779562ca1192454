"""``bilstm demo | compare | merge-modes | reproduce``: the tutorial's experiments over many seeds.

Every subcommand checks all of its arguments (counts, names, the output path,
the backend) before it imports Keras or writes anything, and stops on a bad
one with a single line and exit status 2 (``keras_impl.options``: its parsers
and ``UsageError``, as every command). Keras is imported only in ``run``,
after ``--backend`` has set ``KERAS_BACKEND``.

``--cell lstm|gru|simple_rnn`` puts that recurrent layer in every model; the
model names, titles, legends and run records say which (``runner.model_name``).

An ``--out`` that already holds a result set is refused unless ``--resume`` (keep
its finished runs) or ``--overwrite`` (replace the files the command writes, no
other). With too few seeds for any difference to be significant after Holm's
correction, one line says so before training. When done, each command prints a
table that fits 100 columns, the verdicts with their intervals and the files
written (``keras_impl.experiments.console``).
"""
from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path

from keras_impl.backend import BACKENDS, BackendError, select_backend
from keras_impl.options import (UsageError, add_backend_option, add_out_option, check_writable_folder, nearest_existing,
                                positive_int)
from reference.vocabulary import CELLS, MERGE_MODES  # NumPy only: the checks need no Keras

# The merge modes the tutorial compares, in the order it shows them (a fact of the tutorial, not the vocabulary).
TUTORIAL_MERGE_MODES = ("sum", "mul", "ave", "concat")
REPORT_FILES = ("REPORT.md", "claims.json")  # what keras_impl/experiments/report.py writes
DEFAULT_SEEDS = 20
DEFAULT_UPDATES = 250
DEMO_UPDATES = 1000


def _common(parser, *, updates: int, layers: bool, out: str):
    add_backend_option(parser)
    parser.add_argument("--seeds", type=positive_int("--seeds"), default=DEFAULT_SEEDS,
                        help=f"independent runs (default {DEFAULT_SEEDS})")
    parser.add_argument("--updates", type=positive_int("--updates"), default=updates,
                        help=f"training updates, one sequence each (default {updates})")
    parser.add_argument("--heldout", type=positive_int("--heldout"), default=1000,
                        help="held-out sequences per seed (default 1000)")
    parser.add_argument("--mode", default="fast",
                        help="fast (compiled loop) or faithful (one fit call per sequence) (default fast)")
    add_out_option(parser, out)
    parser.add_argument("--resume", action="store_true",
                        help="continue the result set in --out: keep the runs already finished with the same arguments")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the result set in --out (only the files this command writes)")
    parser.add_argument("--variable-length", action="store_true", help="sequences of 5 to 20 steps, zero-padded and masked")
    parser.add_argument("--cell", default="lstm", help=f"recurrent layer: {' | '.join(CELLS)} (default lstm)")
    if layers:
        parser.add_argument("--layers", type=positive_int("--layers"), default=1, help="stacked recurrent layers (default 1)")


def add_demo_arguments(parser):
    _common(parser, updates=DEMO_UPDATES, layers=False, out="results/demo-MODEL, MODEL as --model and --cell name it, e.g. demo-bigru")
    parser.add_argument("--model", default="bilstm",
                        help="lstm (one direction) or bilstm (Bidirectional), of --cell's layer; "
                             "with --cell gru also gru or bigru, and so on (default bilstm)")


def add_compare_arguments(parser):
    _common(parser, updates=DEFAULT_UPDATES, layers=True, out="results/compare, results/compare-CELL for another --cell")


def add_merge_arguments(parser):
    _common(parser, updates=DEFAULT_UPDATES, layers=True, out="results/merge-modes, results/merge-modes-CELL for another --cell")
    parser.add_argument("--merge-modes", default=",".join(TUTORIAL_MERGE_MODES), help="comma-separated (default sum,mul,ave,concat)")


def add_reproduce_arguments(parser):
    _common(parser, updates=DEFAULT_UPDATES, layers=True, out="results/tutorial, results/tutorial-CELL for another --cell")
    parser.add_argument("--demo-updates", type=positive_int("--demo-updates"), default=DEMO_UPDATES,
                        help=f"updates of the demo runs (default {DEMO_UPDATES})")


# ---------------------------------------------------------------- checks (before any work)

def check_output_dir(path) -> Path:
    """The folder can be created or written (``keras_impl.options.check_writable_folder``); nothing is created here."""
    try:
        os.stat(nearest_existing(Path(path)))  # a loop of symbolic links is no file: say why it cannot be used
        return check_writable_folder(path)
    except FileNotFoundError:  # a link to nothing: the folder check names it
        return check_writable_folder(path)
    except OSError as exc:  # a name too long, a loop of symbolic links: the path cannot even be looked at
        raise UsageError(f"--out cannot be used: {exc.strerror or exc}: {str(path)[:80]}"
                         f"{'...' if len(str(path)) > 80 else ''}") from None


def create_output_dir(path: Path) -> None:
    """Create the folder and write a probe file in it; on failure remove what was created, then refuse."""
    missing = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
        test = path / f".bilstm-write-test-{os.getpid()}"
        test.write_bytes(b"")
        test.unlink()
    except OSError as exc:
        for created in missing:  # innermost first
            try:
                created.rmdir()
            except OSError:
                pass
        raise UsageError(f"--out {path} cannot be written: {exc.strerror or exc}") from None


def check_output_targets(folder: Path, files, subfolders) -> None:
    """Every file a command will write under ``folder`` can be (a file or nothing), every folder can hold files.

    Run before any work, so that a folder squatting on ``results.csv``, or a
    read-only ``runs/`` left by another user, stops the command at the start
    rather than after the training.
    """
    for name in files:
        target = folder / name
        if target.exists() and not target.is_file():
            raise UsageError(f"--out: {target} exists and is not a file; move it away or choose another --out")
    for name in subfolders:
        target = folder / name
        if target.exists() and not target.is_dir():
            raise UsageError(f"--out: {target} exists and is not a folder; move it away or choose another --out")
        if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
            raise UsageError(f"--out: {target} cannot be written: no write permission")
        if target.is_dir() and name.startswith("runs/"):  # a run's record, seed_NNNN.json, must be a file too
            for entry in target.glob("seed_*.json"):
                if not entry.is_file():
                    raise UsageError(f"--out: {entry} exists and is not a file; move it away or choose another --out")


def result_set_files(folder: Path, files) -> list[str]:
    """The names of a result set found in ``folder``: the files a command writes there, and ``runs/``."""
    found = [name for name in files if (folder / name).exists()]
    return found + (["runs/"] if (folder / "runs").exists() else [])


def check_no_result_set(args, planned, nested: bool) -> None:
    """Refuse an ``--out`` that already holds a result set unless ``--resume`` or ``--overwrite`` says what to do.

    ``nested`` (reproduce): REPORT.md and claims.json in ``--out``, one folder an experiment beneath it.
    """
    from keras_impl.experiments.summary import OUTPUT_FILES
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other: --resume keeps the finished runs, "
                         "--overwrite runs them again")
    if args.resume or args.overwrite:
        return
    if nested:
        found = result_set_files(args.out, REPORT_FILES)
        for e in planned:
            found += [f"{e.name}/{name}" for name in result_set_files(args.out / e.name, OUTPUT_FILES)]
    else:
        found = result_set_files(args.out, OUTPUT_FILES)
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UsageError(f"--out {args.out} already holds a result set ({shown}); pass --resume to continue it "
                         "or --overwrite to replace its files")


def seed_count_notice(planned) -> str | None:
    """One line, before any training, when the seed count leaves some experiment no significant difference."""
    from keras_impl.experiments.report import ALPHA
    from keras_impl.experiments.stats import seeds_needed, smallest_holm_p
    from keras_impl.experiments.summary import holm_family_size
    short = [(e.name, e.seeds, holm_family_size(len(e.models))) for e in planned if len(e.models) > 1]
    short = [(name, seeds, tests) for name, seeds, tests in short if smallest_holm_p(seeds, tests) >= ALPHA]
    if not short:
        return None
    seeds = short[0][1]
    each = ", ".join(f"{smallest_holm_p(seeds, tests):.3g} after Holm over the {tests} tests of {name}"
                     for name, _, tests in short)
    need = max(seeds_needed(tests, ALPHA) for _, _, tests in short)
    return (f"{seeds} seeds: the smallest possible p is {each} (not below {ALPHA}: no difference can be "
            f"significant); use {need} or more seeds")


def check_cell(args) -> None:
    if args.cell not in CELLS:
        raise UsageError(f"unknown --cell {args.cell!r}; expected one of {', '.join(CELLS)}")


def demo_direction(model: str, cell: str) -> str | None:
    """--model of demo: 'lstm' / 'bilstm' (the tutorial's words) or the cell's own names ('gru' / 'bigru')."""
    return {"lstm": "forward", "bilstm": "bidirectional", cell: "forward", f"bi{cell}": "bidirectional"}.get(model)


def check_common(args, default_out: str) -> None:
    check_cell(args)
    if args.mode not in ("fast", "faithful"):
        raise UsageError(f"unknown --mode {args.mode!r}; expected 'fast' or 'faithful'")
    if args.backend is not None and args.backend not in BACKENDS:
        raise UsageError(f"unknown --backend {args.backend!r}; expected one of {', '.join(BACKENDS)}")
    args.out = check_output_dir(args.out if args.out is not None else Path(default_out))


def parse_merge_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes:
        raise UsageError("--merge-modes is empty; expected a comma-separated subset of sum,mul,ave,concat")
    for m in modes:
        if m not in MERGE_MODES:
            raise UsageError(f"unknown merge mode {m!r}; expected one of {', '.join(MERGE_MODES)}")
    if len(set(modes)) != len(modes):
        raise UsageError(f"--merge-modes lists a mode twice: {text!r}")
    return modes


# ---------------------------------------------------------------- experiments

def demo_experiment(args, model: str, updates: int):
    from keras_impl.experiments.runner import Experiment, model_name, model_spec
    direction = demo_direction(model, args.cell)
    spec = model_spec(direction, cell=args.cell, variable_length=args.variable_length)
    name = model_name(direction, args.cell)
    return Experiment(f"demo-{name}", ((name, spec),), args.seeds, updates, args.mode, args.heldout,
                      args.variable_length, 1)


def compare_experiment(args):
    from keras_impl.experiments.runner import Experiment, model_name, model_spec
    kw = dict(cell=args.cell, layers=args.layers, variable_length=args.variable_length)
    models = tuple((model_name(d, args.cell), model_spec(d, **kw)) for d in ("forward", "backward", "bidirectional"))
    return Experiment("compare", models, args.seeds, args.updates, args.mode, args.heldout, args.variable_length, args.layers)


def merge_experiment(args, modes):
    from keras_impl.experiments.runner import Experiment, model_name, model_spec
    models = tuple((model_name("bidirectional", args.cell, m),
                    model_spec("bidirectional", cell=args.cell, merge_mode=m, layers=args.layers,
                               variable_length=args.variable_length)) for m in modes)
    return Experiment("merge-modes", models, args.seeds, args.updates, args.mode, args.heldout,
                      args.variable_length, args.layers)


def reproduce_experiments(args):
    """What ``reproduce`` runs, in order: both demos, the comparison, the merge modes (each into its own folder)."""
    return [demo_experiment(args, "bilstm", args.demo_updates), demo_experiment(args, "lstm", args.demo_updates),
            compare_experiment(args), merge_experiment(args, TUTORIAL_MERGE_MODES)]


def experiment_title(experiment) -> str:
    """The figure's title: the experiment, in the words of its cell ('GRU vs reversed GRU vs ...')."""
    from keras_impl.experiments.runner import CELL_LABELS, model_label
    cell = CELL_LABELS.get(experiment.cell, experiment.cell)
    titles = {"compare": f"{cell} vs reversed {cell} vs Bidirectional {cell} (concat)",
              "merge-modes": f"Bidirectional {cell} merge modes"}
    return titles.get(experiment.name, f"{model_label(experiment.models[0][1])}, the tutorial's first example")


def execute(experiment, out: Path, resume: bool, command: str, arguments: dict) -> dict:
    """Train, then write results.csv, curves.csv, pairs.csv, summary.json and loss.png/svg into ``out``."""
    from tqdm import tqdm

    from keras_impl.backend import backend_info
    from keras_impl.experiments.runner import model_label, run_experiment
    from keras_impl.experiments.summary import summarize, write_outputs

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    with tqdm(total=len(experiment.models) * experiment.seeds, desc=experiment.name, unit="run",
              file=sys.stderr, dynamic_ncols=True) as bar:
        records = run_experiment(experiment, out, resume=resume, progress=bar,
                                 notify=lambda line: tqdm.write(line, file=sys.stderr))
    summary = summarize(records, experiment.updates)
    meta = {"command": command, "experiment": experiment.name, "arguments": arguments,
            "backend_info": backend_info(), "seeds": list(range(experiment.seeds)),
            "updates": experiment.updates, "mode": experiment.mode, "heldout": experiment.heldout,
            "variable_length": experiment.variable_length, "layers": experiment.layers, "cell": experiment.cell,
            "specs": {name: repr(spec) for name, spec in experiment.models},
            "labels": {name: model_label(spec, merge_mode=experiment.name == "merge-modes")
                       for name, spec in experiment.models},
            "started_utc": started, "wall_time_s": time.perf_counter() - t0}
    title = experiment_title(experiment)
    if experiment.variable_length:
        title += ", variable length 5-20"
    if experiment.layers > 1:
        title += f", {experiment.layers} layers"
    from keras_impl.backend import run_caption
    title += f"\n{run_caption(meta['backend_info'])}"  # a figure says what computed it
    write_outputs(out, title, records, summary, meta)
    return {"records": records, "summary": summary, "meta": meta, "out": out}


def _cell_suffix(args) -> str:
    """Default folders: results/compare for the tutorial's LSTM, results/compare-gru for a GRU (never mixed)."""
    return "" if args.cell == "lstm" else f"-{args.cell}"


def _arguments(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}


def check_memory(experiments, backend: str) -> None:
    """Refuse, with the figure, experiments whose estimated memory exceeds what the machine has available."""
    from keras_impl.experiments.memory import available_bytes, estimate_bytes, format_bytes
    need = max(estimate_bytes(models=len(e.models), seeds=e.seeds, updates=e.updates, heldout=e.heldout,
                              timesteps=e.models[0][1].timesteps, units=max(e.models[0][1].layer_units),
                              layers=e.layers, directions=2 if any(s.bidirectional for _, s in e.models) else 1,
                              batched_seeds=backend == "jax" and e.mode == "fast")
               for e in experiments)
    have = available_bytes()
    if have is not None and need > have:
        raise UsageError(f"this run needs about {format_bytes(need)} of memory (rough bound, "
                            f"keras_impl/experiments/memory.py) but {format_bytes(have)} is available; "
                            "lower --seeds, --updates or --heldout")


def _prepare(args, command: str, default_out: str, extra_check=None, experiments=None):
    """All checks, then the backend: returns None when fine, else prints one line and returns 2.

    ``experiments()`` builds the experiments the command will run (no Keras needed),
    for the memory check.
    """
    try:
        check_common(args, default_out)
        if extra_check is not None:
            extra_check()
        args.backend = select_backend(args.backend)  # recorded as it ran (summary.json), never null
        if experiments is not None:
            from keras_impl.experiments.summary import OUTPUT_FILES
            planned = experiments()
            check_memory(planned, args.backend)
            nested = command == "reproduce"  # one folder an experiment, REPORT.md beside them
            if nested:
                check_output_targets(args.out, REPORT_FILES, [e.name for e in planned])
            for e in planned:
                check_output_targets(args.out / e.name if nested else args.out, OUTPUT_FILES,
                                     ["runs"] + [f"runs/{model}" for model, _ in e.models])
            check_no_result_set(args, planned, nested)
        create_output_dir(args.out)  # last: nothing is created unless every other check passed
    except (UsageError, BackendError) as exc:
        print(f"bilstm {command}: error: {exc}", file=sys.stderr)
        return 2
    from keras_impl.backend import print_keras_header
    print_keras_header(command)  # every check passed: say what runs, before any work
    if experiments is not None and (notice := seed_count_notice(planned)) is not None:
        print(f"bilstm {command}: note: {notice}", file=sys.stderr)
    return None


def experiment_files() -> list[str]:
    """What ``execute`` writes into an experiment's folder, as the summary lists it."""
    from keras_impl.experiments.summary import OUTPUT_FILES
    return [*OUTPUT_FILES, "runs/"]


def print_lines(lines) -> None:
    print("\n".join(lines))


def print_demo(result, model: str, cell: str) -> None:
    from keras_impl.experiments.console import experiment_lines, files_lines
    from keras_impl.experiments.report import demo_claims
    record = next(iter(result["records"].values()))[0]
    example = record["example"]
    print(f"A new sequence after {len(record['loss'])} updates (seed 0):")
    for expected, predicted in zip(example["expected"], example["predicted"]):
        print(f"Expected: {expected} Predicted: {predicted}")
    print_lines(experiment_lines(result["meta"]["experiment"], result, demo_claims(result, cell, model))
                + files_lines(result["out"], [("", experiment_files())]))


def print_experiment(result, claims: list[dict]) -> None:
    from keras_impl.experiments.console import experiment_lines, files_lines
    print_lines(experiment_lines(result["meta"]["experiment"], result, claims)
                + files_lines(result["out"], [("", experiment_files())]))


def run_demo(args) -> int:
    check_cell(args)  # first: the names --model accepts depend on the cell
    if demo_direction(args.model, args.cell) is None:
        names = "'lstm' or 'bilstm'" + ("" if args.cell == "lstm" else f" (or {args.cell!r} or 'bi{args.cell}')")
        raise UsageError(f"unknown --model {args.model!r}; expected {names}")
    from keras_impl.experiments.runner import model_name
    name = model_name(demo_direction(args.model, args.cell), args.cell)
    if (code := _prepare(args, "demo", f"results/demo-{name}",
                         experiments=lambda: [demo_experiment(args, args.model, args.updates)])) is not None:
        return code
    result = execute(demo_experiment(args, args.model, args.updates), args.out, args.resume, "demo", _arguments(args))
    print_demo(result, name, args.cell)
    return 0


def run_compare(args) -> int:
    if (code := _prepare(args, "compare", f"results/compare{_cell_suffix(args)}",
                         experiments=lambda: [compare_experiment(args)])) is not None:
        return code
    from keras_impl.experiments.report import compare_claims
    result = execute(compare_experiment(args), args.out, args.resume, "compare", _arguments(args))
    print_experiment(result, compare_claims(result["summary"], args.cell))
    return 0


def run_merge_modes(args) -> int:
    modes = []

    def check():
        modes.extend(parse_merge_modes(args.merge_modes))
    if (code := _prepare(args, "merge-modes", f"results/merge-modes{_cell_suffix(args)}", check,
                         experiments=lambda: [merge_experiment(args, tuple(modes))])) is not None:
        return code
    from keras_impl.experiments.report import merge_claims
    result = execute(merge_experiment(args, tuple(modes)), args.out, args.resume, "merge-modes", _arguments(args))
    print_experiment(result, merge_claims(result["summary"], args.cell))
    return 0


def run_reproduce(args) -> int:
    if (code := _prepare(args, "reproduce", f"results/tutorial{_cell_suffix(args)}",
                         experiments=lambda: reproduce_experiments(args))) is not None:
        return code
    from keras_impl.experiments.report import write_report
    t0 = time.perf_counter()
    arguments = _arguments(args)
    results = {}
    for experiment in reproduce_experiments(args):
        results[experiment.name] = execute(experiment, args.out / experiment.name, args.resume, "reproduce", arguments)
    report = write_report(args.out, results, arguments, time.perf_counter() - t0)
    print_reproduced(results, report, args.cell)
    return 0


def print_reproduced(results: dict, report: Path, cell: str) -> None:
    """What compare, merge-modes and demo would print, for every experiment, then every file written."""
    from keras_impl.experiments.console import experiment_lines, files_lines
    from keras_impl.experiments.report import compare_claims, demo_claims, merge_claims
    claims_of = {"compare": lambda r: compare_claims(r["summary"], cell),
                 "merge-modes": lambda r: merge_claims(r["summary"], cell)}
    lines = []
    for name, result in results.items():
        model = next(iter(result["summary"]["models"]))
        claims = claims_of[name](result) if name in claims_of else demo_claims(result, cell, model)
        lines += [*experiment_lines(name, result, claims), ""]
    groups = [("", list(REPORT_FILES))] + [(name, experiment_files()) for name in results]
    print_lines(lines + files_lines(report.parent, groups))


COMMANDS = [
    ("demo", "The tutorial's first example: train, print Expected/Predicted, held-out accuracy.", add_demo_arguments, run_demo),
    ("compare", "LSTM vs reversed LSTM vs Bidirectional LSTM (or --cell gru, simple_rnn), over seeds, with paired statistics.",
     add_compare_arguments, run_compare),
    ("merge-modes", "Bidirectional LSTM (or --cell gru, simple_rnn) with each merge mode, over seeds, with paired statistics.",
     add_merge_arguments, run_merge_modes),
    ("reproduce", "Every experiment of the tutorial into one folder, with REPORT.md and verdicts.", add_reproduce_arguments, run_reproduce),
]

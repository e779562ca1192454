"""A sweep across many machines: which cases shard K of N runs, and what a results folder is a run of.

The sharding rule. A shard is a set of shapes (B, T, U, D): every case of a shape (every
implementation, framework, device and kernel path) runs in the same shard, so each ratio
the summary draws (Keras over raw, CPU against GPU) compares timings made on one machine.
The distinct shapes of the whole plan are put in order of training-step FLOPs (ties by
B, T, U, D) and dealt out in turn: the i-th shape (from 0) goes to shard ``i mod N + 1``.
The rule reads the set of shapes only, never the order the cases were listed in; shards
differ by at most one shape, and each gets a like mix of small and large ones.

``sweep.json`` in every results folder says what it is a run of: the grid's options, the
grid fingerprint (a hash of the whole plan's case keys, every shard's), the shards it holds
and of how many, its case keys, and the versions of the packages that time them (read from
the installed metadata: no framework imported). ``bilstm bench merge`` checks them, and
``--resume`` refuses a folder that is a run of another grid or shard.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cases import Case, train_step_flops
from benchmarks.store import ResultsFileError
from keras_impl.backend import installed_version
from keras_impl.files import atomic_write_json
from keras_impl.options import UsageError

SWEEP_FILE = "sweep.json"
FORMAT = 1
PACKAGES = ("keras", "jax", "jaxlib", "torch", "tensorflow", "numpy")  # whose versions a merge compares
TASK_ID, TASK_COUNT, TASK_MIN = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"


@dataclass(frozen=True)
class Shard:
    index: int  # K, from 1
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)


def parse_shard(text: str, option: str = "--shard") -> Shard:
    """``K/N`` with 1 <= K <= N; ``UsageError`` (one line naming ``option``) otherwise."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", str(text))
    if match is None:
        raise UsageError(f"{option} must be K/N (shard K of N, 1 <= K <= N), got {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"{option} must be K/N with 1 <= K <= N, got {text!r}")
    return Shard(k, n)


def shard_from_env(environ) -> Shard | None:
    """The shard of a SLURM array task: K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1 (MIN: 0 when unset),
    N = SLURM_ARRAY_TASK_COUNT; None outside an array. A contiguous array (``--array=0-3`` or ``1-4``) maps onto 1..N."""
    task, count = environ.get(TASK_ID), environ.get(TASK_COUNT)
    if task is None and count is None:
        return None
    if task is None or count is None:
        raise UsageError(f"{TASK_ID if task is None else TASK_COUNT} is not set but "
                         f"{TASK_COUNT if task is None else TASK_ID} is; pass --shard K/N")
    values = {TASK_ID: task, TASK_COUNT: count, TASK_MIN: environ.get(TASK_MIN, "0")}
    bad = [f"{k}={v!r}" for k, v in values.items() if not re.fullmatch(r"\s*[0-9]+\s*", v)]
    if bad:
        raise UsageError(f"SLURM array variables must be non-negative integers, got {', '.join(bad)}; pass --shard K/N")
    k = int(task) - int(values[TASK_MIN]) + 1
    text = f"{k}/{int(count)}"
    return parse_shard(text, option=f"the SLURM array's shard ({TASK_ID}={task}, {TASK_MIN}="
                                    f"{values[TASK_MIN]}, {TASK_COUNT}={count}: a contiguous --array gives K/N)")


def resolve_shard(text: str | None, environ=os.environ) -> Shard:
    """``--shard`` if given, else the SLURM array's, else the whole grid (1/1)."""
    if text is not None:
        return parse_shard(text)
    return shard_from_env(environ) or WHOLE


def case_shape(case: Case) -> tuple[int, int, int, int]:
    return case.batch, case.timesteps, case.units, case.features


def shard_of_shapes(shapes, count: int) -> dict[tuple, int]:
    """{shape: shard index} by the rule above (FLOP order, dealt out in turn)."""
    ordered = sorted(set(shapes), key=lambda s: (train_step_flops(*s), s))
    return {shape: i % count + 1 for i, shape in enumerate(ordered)}


def select(cases: list[Case], shard: Shard) -> list[Case]:
    """The cases of ``shard``, in the order ``cases`` had them."""
    owner = shard_of_shapes([case_shape(c) for c in cases], shard.count)
    return [c for c in cases if owner[case_shape(c)] == shard.index]


def fingerprint(cases: list[Case]) -> str:
    """A hash of the whole plan's case keys (every shard's), whatever their order."""
    return hashlib.sha256("\n".join(sorted(c.key for c in cases)).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    out = {name: installed_version(name) for name in PACKAGES}
    if out["tensorflow"] is None:  # this project installs the CPU build under its own name
        out["tensorflow"] = installed_version("tensorflow-cpu")
    return out


def release(version: str) -> str:
    """A version without its local build label: torch 2.13.0+cpu and 2.13.0+cu126 are one release."""
    return str(version).split("+", 1)[0]


def sweep_definition(full: list[Case], cases: list[Case], shard: Shard, grid: dict) -> dict:
    """What ``sweep.json`` holds for a run of ``cases`` (shard ``shard`` of the plan ``full``)."""
    return {"format": FORMAT, "fingerprint": fingerprint(full), "grid": grid, "shards": [shard.index],
            "of": shard.count, "cases": [c.key for c in cases], "total_cases": len(full),
            "versions": package_versions()}


def write_sweep(folder: Path, sweep: dict) -> None:
    atomic_write_json(Path(folder) / SWEEP_FILE, sweep)


def read_sweep(folder: Path) -> dict:
    """The folder's ``sweep.json``, checked; ``ResultsFileError`` (one line naming the file) where unusable."""
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        raise ResultsFileError(f"{path} does not exist: not a results folder written by `bilstm bench` "
                               "with sharding (run it again, or --resume it, to write one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path} is not readable ({type(exc).__name__}: {exc})") from None
    problems = []
    if not isinstance(data, dict):
        problems.append("not a JSON object")
    else:
        if data.get("format") != FORMAT:
            problems.append(f"format {data.get('format')!r}, not {FORMAT}")
        if not isinstance(data.get("fingerprint"), str):
            problems.append("no fingerprint")
        n = data.get("of")
        if not (isinstance(n, int) and n >= 1):
            problems.append(f"'of' must be a positive int, got {n!r}")
        shards = data.get("shards")
        if not (isinstance(shards, list) and shards and all(isinstance(k, int) and isinstance(n, int) and 1 <= k <= n
                                                             for k in shards)):
            problems.append(f"'shards' must be a list of shard numbers from 1 to 'of', got {shards!r}")
        if not (isinstance(data.get("cases"), list) and all(isinstance(k, str) for k in data["cases"])):
            problems.append("'cases' must be a list of case keys")
        if not isinstance(data.get("grid"), dict) or not isinstance(data.get("versions"), dict):
            problems.append("'grid' and 'versions' must be objects")
    if problems:
        raise ResultsFileError(f"{path} is not a sweep file: {'; '.join(problems)}")
    return data


def sweep_problem(sweep: dict, full: list[Case]) -> str | None:
    """Why ``sweep`` (a folder's ``sweep.json``, read) is not what it says it is, one line naming the field;
    None when it holds. ``full``: the whole plan its ``grid`` describes (``train_speed.plan_of_grid``).

    It holds when the plan gives its fingerprint, and its ``cases`` are exactly the cases that its
    ``shards`` of ``of`` hold by the sharding rule: no more (a shard claiming others), no fewer (a cut list).
    """
    if fingerprint(full) != sweep["fingerprint"]:
        return ("'grid' does not give its 'fingerprint' (the grid or the fingerprint edited, or written by "
                "another version of bilstm-lab)")
    shape_of = {c.key: case_shape(c) for c in full}
    listed = sweep["cases"]
    strangers = [k for k in listed if k not in shape_of]
    if strangers:
        return f"'cases' lists {len(strangers)} case(s) its grid does not have (first {strangers[0]})"
    if len(set(listed)) != len(listed):
        return "'cases' lists a case twice"
    n_shapes, of, claimed = len(set(shape_of.values())), sweep["of"], set(sweep["shards"])

    def cases_of(shards: set[int], n: int) -> set[str]:
        owner = shard_of_shapes(shape_of.values(), n)
        return {k for k, shape in shape_of.items() if owner[shape] in shards}

    def split(n: int) -> tuple[set[int], set[str]]:
        """(the shards of n that the listed cases fall in, every case of those shards)."""
        owner = shard_of_shapes(shape_of.values(), n)
        shards = {owner[shape_of[k]] for k in listed}
        return shards, cases_of(shards, n)

    mine = cases_of(claimed, of)
    if set(listed) == mine:
        return None
    named = f"{','.join(map(str, sorted(claimed)))}/{of}"
    shards, expected = split(of)
    if set(listed) == expected:
        return (f"'shards' says shard {named}, but its cases are those of shard "
                f"{','.join(map(str, sorted(shards)))}/{of}")
    if not set(listed) <= mine:
        return f"'cases' lists {len(set(listed) - mine)} case(s) of shards that its 'shards' ({named}) do not name"
    line = f"'cases' lists {len(listed)} of the {len(mine)} cases of shard {named}: cut short, or 'of' or 'shards' edited"
    for n in range(1, max(n_shapes, of) + 1):  # the split whose shards these cases are, if 'of' was edited
        if n != of and split(n)[1] == set(listed):
            return line + f" (they are exactly the cases of shard {','.join(map(str, sorted(split(n)[0])))}/{n})"
    return line


def records_problem(sweep: dict, full: list[Case], records: list[dict]) -> str | None:
    """Why the records of a folder's own cases disagree with its ``sweep``: a ``shard`` field (a merged
    folder's records carry one) naming another shard than the one the rule gives its case."""
    owner = shard_of_shapes([case_shape(c) for c in full], sweep["of"])
    shape_of = {c.key: case_shape(c) for c in full}
    declared = set(sweep["cases"])
    for r in records:
        if r["key"] in declared and r.get("shard") is not None and r["shard"] != owner[shape_of[r["key"]]]:
            return (f"record {r['key']}: 'shard' is {r['shard']!r}, but that case is in shard "
                    f"{owner[shape_of[r['key']]]}/{sweep['of']}")
    return None


def grid_difference(a: dict, b: dict, names: tuple[str, str]) -> str:
    """The options two grid definitions differ in, e.g. ``threads 1 there, null here``."""
    fields = sorted(set(a) | set(b))
    diffs = [f"{f} {_short(a.get(f))} {names[0]}, {_short(b.get(f))} {names[1]}"
             for f in fields if _canonical(a.get(f)) != _canonical(b.get(f))]
    return "; ".join(diffs) or "the same options, a different list of cases (another version of bilstm-lab?)"


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)  # tuples and lists alike, as in the file


def _short(value, width: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."

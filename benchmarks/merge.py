"""``bilstm bench merge DIR... --out DIR``: the shard folders of one sweep, from one machine or many, as one result set.

    bilstm bench merge results/bench/*/shard-*-of-4 --out results/bench/merged

Checked before anything is written, each a one-line refusal with exit status 2:

- every DIR is a results folder with ``results.json`` and ``sweep.json``, and no run holds it now;
- each is what its ``sweep.json`` says: the grid it names gives its fingerprint, and its ``cases`` are
  exactly those of its ``shards`` of ``of`` (no shard claimed that it does not hold, no case list cut);
  every record of its cases is whole, as ``--resume`` checks it (``store.record_problem``: finite positive
  timings, fields that agree with the key), and carries no other shard's number;
- they are shards of one grid: the same grid fingerprint and options (the message names the options that
  differ), split into the same number of shards, no shard given twice;
- they were timed with the same releases of keras, jax, jaxlib, torch, tensorflow and numpy (a package a
  folder does not have is not compared; the local build label, ``+cpu`` or ``+cu126``, is ignored);
- ``--out`` can be written, is none of the DIRs, and holds no result set unless ``--overwrite``.

Then each folder's own cases (records a folder holds from other runs are left out, and counted in the
log) go into ``--out``, each record tagged with the machine (``machine``: the machine id, ``hostname``)
and the shard it ran in: ``results.json`` (its ``machine`` header: the one machine, or every machine
under ``machines``), ``results.csv``, ``sweep.json`` (the shards present and those missing),
``summary.md`` and the figures.

A missing shard is never dropped silently: the merge writes what it has, the summary and the log name
each missing shard, and the command exits with status 1. Status 0: every shard of the grid is there.
A merged folder is itself a shard folder (holding several shards): merging it again with the missing
shard completes it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.destination import check_out_folder
from benchmarks.environment import machine_id
from benchmarks.lock import FolderLock, FolderLocked, holder
from benchmarks.shards import (FORMAT, PACKAGES, SWEEP_FILE, grid_difference, read_sweep, records_problem, release,
                               sweep_problem, write_sweep)
from benchmarks.store import ResultsFileError, ResultsStore, read_results, record_problem
from benchmarks.train_speed import MACHINE_FIELDS, RESULT_FILES, plan_of_grid
from keras_impl.options import UsageError

PREFIX = "bilstm bench merge"  # every line this command prints starts with it, errors with "... merge: error:"

INCOMPLETE = 1  # exit status of a merge that is missing shards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="shard folders (results.json and sweep.json each)")
    parser.add_argument("--out", required=True, help="folder for the merged result set")
    parser.add_argument("--overwrite", action="store_true", help="replace a result set already in --out")
    parser.add_argument("--no-summary", action="store_true", help="do not draw figures and summary.md")


def _machine_id(description: dict) -> str:
    try:
        return machine_id(description)
    except (KeyError, TypeError, AttributeError):
        return "unknown-machine"


def load_inputs(dirs: list[str]) -> list[dict]:
    """Each folder's sweep, machine and records; ``UsageError`` for one that is not a readable shard folder."""
    inputs = []
    for text in dirs:
        folder = Path(text)
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder")
        pid = holder(folder)
        if pid is not None:
            raise UsageError(f"{folder} is in use by a benchmark run (pid {pid}): merge it once that run has finished")
        if not (folder / "results.json").is_file():
            raise UsageError(f"{folder} has no results.json: not a results folder")
        try:
            sweep = read_sweep(folder)
            machine, records, _ = read_results(folder / "results.json")
        except ResultsFileError as exc:
            raise UsageError(str(exc)) from None
        check_shard(folder, sweep, records)
        inputs.append({"folder": folder, "sweep": sweep, "machine": machine, "records": records})
    return inputs


def check_shard(folder: Path, sweep: dict, records: list[dict]) -> None:
    """A shard folder is what its ``sweep.json`` says, and every record of its cases is whole: each record
    checked as ``--resume`` checks it (``store.record_problem``), the sweep against the grid it names and the
    records (``shards.sweep_problem``, ``shards.records_problem``). ``UsageError`` naming the folder and field."""
    try:
        full = plan_of_grid(sweep["grid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{folder / SWEEP_FILE}: 'grid' does not describe a grid ({type(exc).__name__}: {exc})") from None
    problem = sweep_problem(sweep, full) or records_problem(sweep, full, records)
    if problem:
        raise UsageError(f"{folder / SWEEP_FILE}: {problem}")
    declared = set(sweep["cases"])
    for r in records:
        if r["key"] in declared and (why := record_problem(r)):
            raise UsageError(f"{folder / 'results.json'}: record {r['key']}: {why}")


def check_inputs(inputs: list[dict]) -> tuple[dict[int, Path], list[int]]:
    """One grid, one set of releases, no shard twice; returns ({shard: folder}, missing shards)."""
    first = inputs[0]
    for other in inputs[1:]:
        a, b = first["sweep"], other["sweep"]
        names = (str(first["folder"]), str(other["folder"]))
        if a["fingerprint"] != b["fingerprint"] or _grid_differs(a["grid"], b["grid"]):
            raise UsageError(f"{names[0]} and {names[1]} are runs of different grids: "
                             f"{grid_difference(a['grid'], b['grid'], (f'in {names[0]}', f'in {names[1]}'))}")
        if a["of"] != b["of"]:
            raise UsageError(f"{names[0]} is a shard of {a['of']}, {names[1]} a shard of {b['of']}: "
                             "shards of different splits of the grid do not make one result set")
    for package in PACKAGES:
        seen: dict[str, list[str]] = {}
        for item in inputs:
            version = item["sweep"]["versions"].get(package)
            if version is not None:
                seen.setdefault(release(version), []).append(str(item["folder"]))
        if len(seen) > 1:
            listing = "; ".join(f"{v} in {', '.join(folders)}" for v, folders in sorted(seen.items()))
            raise UsageError(f"mixed versions of {package}: {listing}; merge runs timed with the same packages")
    owner: dict[int, Path] = {}
    for item in inputs:
        for k in item["sweep"]["shards"]:
            if k in owner:
                raise UsageError(f"shard {k}/{first['sweep']['of']} is in both {owner[k]} and {item['folder']}")
            owner[k] = item["folder"]
    missing = [k for k in range(1, first["sweep"]["of"] + 1) if k not in owner]
    return owner, missing


def _grid_differs(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True)


def check_out(text: str, inputs: list[dict], overwrite: bool) -> Path:
    out = check_out_folder(text)
    for item in inputs:
        if out.resolve() == item["folder"].resolve():
            raise UsageError(f"--out {out} is one of the folders to merge: pass a new folder")
    present = [name for name in RESULT_FILES if (out / name).exists()]
    if present and not overwrite:
        raise UsageError(f"{out} already holds a result set ({', '.join(present)}); pass --overwrite to replace it, "
                         "or --out for another folder")
    return out


def merged_machine(inputs: list[dict]) -> dict:
    """The results file's header: the one machine (hostnames joined), or every machine under ``machines``."""
    machines = {_machine_id(item["machine"]): item["machine"] for item in inputs}
    hosts = sorted({str(item["machine"].get("hostname")) for item in inputs if item["machine"].get("hostname")})
    for item in inputs:  # a merged folder's header already lists its machines
        machines.update(item["machine"].get("machines") or {})
    if len({tuple(str(item["machine"].get(k)) for k in MACHINE_FIELDS) for item in inputs}) == 1:
        header = dict(inputs[0]["machine"])
        if hosts:
            header["hostname"] = ", ".join(hosts)
    else:
        descriptions = list(machines.values())
        header = {"cpu": "; ".join(sorted({str(d.get("cpu")) for d in descriptions})), "cpu_count": None,
                  "memory_gib": None, "gpus": sorted({g for d in descriptions for g in d.get("gpus") or []}),
                  "platform": "; ".join(sorted({str(d.get("platform")) for d in descriptions})),
                  "python": "; ".join(sorted({str(d.get("python")) for d in descriptions})),
                  "hostname": ", ".join(hosts)}
    header["machines"] = machines
    return header


def merge(inputs: list[dict], out: Path, owner: dict[int, Path], missing: list[int], log) -> ResultsStore:
    first = inputs[0]["sweep"]
    n = first["of"]
    store = ResultsStore(out)
    store.machine, store.records = merged_machine(inputs), {}
    cases: list[str] = []
    for item in inputs:
        sweep, mid = item["sweep"], _machine_id(item["machine"])
        declared = set(sweep["cases"])
        by_key = {r["key"]: r for r in item["records"]}
        only_shard = sweep["shards"][0] if len(sweep["shards"]) == 1 else None
        for key in sweep["cases"]:
            if key in by_key:
                r = by_key[key]
                store.records[key] = {**r, "machine": r.get("machine") or mid,
                                      "hostname": r.get("hostname") or item["machine"].get("hostname"),
                                      "shard": r.get("shard") or only_shard}
        cases += sweep["cases"]
        unrecorded = len(declared - set(by_key))
        leftovers = len(set(by_key) - declared)
        shards = ",".join(map(str, sweep["shards"]))
        log(f"{PREFIX}: {item['folder']}: shard {shards}/{n} on {mid}, {len(declared) - unrecorded} records"
            + (f"; {unrecorded} of its cases have no record (its run was cut short)" if unrecorded else "")
            + (f"; {leftovers} records of other runs left out" if leftovers else ""))
    store.save()
    versions = {p: next((i["sweep"]["versions"].get(p) for i in inputs if i["sweep"]["versions"].get(p)), None)
                for p in PACKAGES}
    write_sweep(out, {"format": FORMAT, "fingerprint": first["fingerprint"], "grid": first["grid"],
                      "shards": sorted(owner), "of": n, "missing_shards": missing, "cases": cases,
                      "total_cases": first.get("total_cases"), "versions": versions,
                      "merged_from": [{"folder": str(i["folder"]), "shards": i["sweep"]["shards"],
                                       "machine": _machine_id(i["machine"])} for i in inputs]})
    return store


def refuse(message) -> int:
    print(f"{PREFIX}: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    log = lambda text: print(text, flush=True)  # noqa: E731
    try:
        inputs = load_inputs(args.dirs)
        owner, missing = check_inputs(inputs)
        out = check_out(args.out, inputs, args.overwrite)
    except UsageError as exc:
        return refuse(exc)
    lock = FolderLock(out)
    try:
        lock.acquire()
    except FolderLocked as exc:
        return refuse(exc)
    except OSError as exc:
        return refuse(f"cannot create {out}: {exc.strerror or exc}")
    try:
        try:  # again under the lock
            check_out(args.out, inputs, args.overwrite)
        except UsageError as exc:
            return refuse(exc)
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
        for figure in out.glob("*.png"):
            figure.unlink()
        store = merge(inputs, out, owner, missing, log)
        n = inputs[0]["sweep"]["of"]
        log(f"{PREFIX}: {len(store.records)} records of shards {','.join(map(str, sorted(owner)))} of {n} "
            f"from {len(inputs)} folders into {out}")
        if not args.no_summary:
            from benchmarks.summary import write_summary
            for path in write_summary(out):
                log(f"{PREFIX}: wrote {path}")
    finally:
        lock.release()
    if missing:
        named = ", ".join(f"{k}/{n}" for k in missing)
        print(f"{PREFIX}: shard{'s' if len(missing) > 1 else ''} {named} missing: no folder given holds "
              f"{'them' if len(missing) > 1 else 'it'}; {out} holds the other {len(owner)} of {n} (incomplete)",
              file=sys.stderr)
        return INCOMPLETE
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

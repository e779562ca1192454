"""The process that runs one artifact in its runtime, and cannot import Keras.

    python -m keras_impl.export.run_artifact FORMAT ARTIFACT INPUTS.npz OUTPUTS.npz [--precision float32|native|bfloat16]
        [--parent-pid PID]

A deployment runs an artifact without Keras; so does this process. Keras is blocked before anything else is
imported: TensorFlow's own `import tensorflow` would otherwise import it (tensorflow/_api/v2/compat/v1
looks Keras up for tf.keras), and a runtime that quietly needed Keras would pass here and fail in
deployment. INPUTS.npz holds s{set}_{input} for one or more input sets, inputs in the model's order; the outputs of
the sets that ran go to OUTPUTS.npz the same way (s{n}_{output}, numbered among the sets that ran). The last line
on stdout is JSON: {"ran_precision": ..., "set_errors": {set: one line}} (a set the runtime refused alone, an input
shape fixed at export), or {"error": one line, "kind": class name} when no set ran.
Exit status 0 when it ran, 1 when the runtime failed, 2 on a bad command line. keras_impl.export.runtimes
.run_in_subprocess is its caller.
"""
from __future__ import annotations

import importlib.machinery
import sys


class _KerasBlocked:
    """A loader that refuses to execute Keras, so `import keras` raises ImportError."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("the artifact runner never imports Keras", name=module.__name__)


class _BlockKeras:
    """A meta-path finder answering for keras and keras.*: a spec without an origin, so TensorFlow's
    importlib.util.find_spec("keras") lookups see no Keras to load, and a real import gets ImportError."""

    def find_spec(self, name, path=None, target=None):
        if name == "keras" or name.startswith("keras."):
            return importlib.machinery.ModuleSpec(name, _KerasBlocked(), origin=None)
        return None


def block_keras() -> None:
    if "keras" in sys.modules:
        raise RuntimeError("Keras was imported before the artifact runner could block it")
    sys.meta_path.insert(0, _BlockKeras())


def main(argv=None) -> int:
    block_keras()
    import argparse
    import json

    import numpy as np

    from keras_impl.export.formats import FORMATS, ArtifactRunError, RuntimeUnavailable
    from keras_impl.export.runtimes import RUNTIME_PRECISIONS, one_line, pack_sets, run_artifact, unpack_sets

    parser = argparse.ArgumentParser(prog="python -m keras_impl.export.run_artifact")
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("artifact")
    parser.add_argument("inputs", help="an .npz file: s{set}_{input}, inputs in the model's order")
    parser.add_argument("outputs", help="where the outputs go, an .npz file")
    parser.add_argument("--precision", choices=RUNTIME_PRECISIONS, default="float32")
    parser.add_argument("--parent-pid", type=int, help="die with this process (keras_impl/lifeline.py)")
    parser.add_argument("--interface", help="a .json file: the model's inputs and outputs ([name, rank]) and "
                        "--map, to match the artifact's to (keras_impl/export/interface.py)")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        from keras_impl.lifeline import die_with_parent
        die_with_parent(args.parent_pid)

    with np.load(args.inputs, allow_pickle=False) as stored:
        input_sets = unpack_sets(stored)
    feed, fetch, matched = None, None, None
    if args.interface:
        from keras_impl.export.interface import InterfaceMismatch, artifact_interface, match
        from keras_impl.export.runtimes import import_runtime
        wanted = json.loads(open(args.interface, encoding="utf-8").read())
        try:
            found = artifact_interface(args.format, import_runtime(args.format), args.artifact)
            if found is not None:  # a format whose tensors have names
                feed, in_how = match("inputs", wanted["inputs"], found[0], wanted["map"])
                fetch, out_how = match("outputs", wanted["outputs"], found[1], wanted["map"])
                matched = {"inputs": in_how, "outputs": out_how}
        except InterfaceMismatch as exc:
            print(json.dumps({"error": str(exc), "kind": "InterfaceMismatch"}), flush=True)
            return 1
        except RuntimeUnavailable as exc:
            print(json.dumps({"error": str(exc), "kind": type(exc).__name__}), flush=True)
            return 1
        except Exception as exc:  # the runtime cannot read the artifact: the run below says so, set by set
            matched = {"inputs": f"by order ({one_line(exc)})", "outputs": "by order"}
    if feed is not None:  # each set's inputs in the artifact's order
        input_sets = [[inputs[feed.index(j)] for j in range(len(feed))] for inputs in input_sets]
    # A set the runtime refuses alone (an input shape fixed at export) is said for that set, the others run:
    # the report names the input family it failed on. When every set fails, the first error is the answer.
    outputs, ran, set_errors, first = [], set(), {}, None
    for k, inputs in enumerate(input_sets):
        try:
            got, ran_precision = run_artifact(args.format, args.artifact, inputs, precision=args.precision)
        except RuntimeUnavailable as exc:
            print(json.dumps({"error": str(exc), "kind": type(exc).__name__}), flush=True)
            return 1
        except (ArtifactRunError, TypeError, ValueError) as exc:  # ArtifactRunError: StaticShapeError too
            kind = type(exc).__name__ if isinstance(exc, ArtifactRunError) else "ArtifactRunError"
            first = first or {"error": one_line(exc), "kind": kind}
            set_errors[str(k)] = one_line(exc)
            continue
        outputs.append(got if fetch is None else [got[j] for j in fetch])  # in the model's output order
        ran.add(ran_precision)
    if first is not None and not outputs:
        print(json.dumps(first), flush=True)
        return 1
    np.savez(args.outputs, **pack_sets(outputs))
    print(json.dumps({"ran_precision": "+".join(sorted(ran)), "set_errors": set_errors, "matched": matched}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

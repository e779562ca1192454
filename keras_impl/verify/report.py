"""What ``verify`` returns: every layer's figures and verdict, printable as the command's table and as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields


@dataclass
class VerifyReport:
    """One model file checked layer by layer: ``str(report)`` is the command's output, ``report.to_json()`` its
    ``--json`` file; ``report.passed`` says whether every layer is within its bound."""
    file: str
    saved_by: str                 # which Keras wrote the file, and in which format
    backend: str
    device: str
    dtype: str                    # what Keras computed in (the oracle is float64)
    seed: int | None              # of the drawn inputs; None for the user's inputs
    versions: dict                # keras, the backend, numpy ...
    inputs: list                  # per model input: shape, dtype, how it was drawn
    bound: dict                   # the bound every layer is held to, and why
    layers: list = field(default_factory=list)  # one row per layer: errors, allowed, verdict (compare.compare)
    decisions: list = field(default_factory=list)  # per classifier output: decisions that agree (decisions.py)
    diagnosis: dict | None = None  # where and why the first failing layer differs (diagnose.py)
    repro: list = field(default_factory=list)  # the reproducer's files, when one was asked for and written
    precision: dict | None = None  # a reduced-precision or quantized model: per-layer precision, end-to-end errors

    @property
    def verdict(self) -> str:
        return "pass" if all(row["verdict"] == "pass" for row in self.layers) else "FAIL"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed_layers(self) -> list[str]:
        return [row["layer"] for row in self.layers if row["verdict"] != "pass"]

    def format(self) -> str:
        """The table ``bilstm verify`` prints: the file and backend, the inputs, a row per layer, a summary."""
        from .compare import format_table
        from .decisions import format_decisions
        from .diagnose import format_diagnosis
        failed = self.failed_layers
        lines = [f"bilstm verify: {self.file} ({self.saved_by}) on {self.backend}, device {self.device}, "
                 f"{self.dtype}, keras {self.versions.get('keras')}"]
        lines += [f"  input {about['input']} {tuple(about['shape'])} {about['dtype']}: {about['drawn']}"
                  for about in self.inputs]
        if self.precision is None:
            lines.append(format_table(self.layers))
        else:
            lines += _format_precision(self)
        lines += format_decisions(self.decisions)
        lines += format_diagnosis(self.diagnosis)
        if self.repro:
            lines.append(f"reproducer written: {self.repro[0].rsplit('/', 1)[0]} (python repro.py there shows the "
                         "difference)")
        lines.append(f"{len(self.layers) - len(failed)}/{len(self.layers)} layers within bounds"
                     + (f"; FAIL: {', '.join(failed)}" if failed else ""))
        return "\n".join(lines)

    __str__ = format

    def as_dict(self) -> dict:
        """The report as plain data (the ``--json`` file's content), with the overall verdict."""
        return {**asdict(self), "verdict": self.verdict}

    def to_json(self) -> str:
        """Strict JSON (an infinite error, of a shape mismatch, is written as null)."""
        from keras_impl.files import json_safe
        return json.dumps(json_safe(self.as_dict()), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> VerifyReport:
        """A report read back from ``as_dict()`` or a ``--json`` file (the stored verdict is recomputed; a field
        added since the file was written takes its default)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _format_precision(report: VerifyReport) -> list[str]:
    """A reduced-precision report's table (both errors per layer) and its model outputs' end-to-end errors."""
    from .precision import format_precision_table
    about = report.precision
    lines = ["each layer on Keras's own inputs to it: weights err = oracle on the float weights - oracle on the "
             "weights Keras computes with; arithmetic err = Keras - the latter"
             + (f" (float weights: {about['float_model']})" if about.get("float_model") else "")]
    lines.append(format_precision_table(report.layers))
    for out in about["outputs"]:
        fig = lambda v: "-" if v is None else f"{v:.2e}"  # noqa: E731
        lines.append(f"model output {out['output']} end to end (max|y| {out['max_abs_output']:.2g}): arithmetic "
                     f"{fig(out['arithmetic_error'])}, weights {fig(out['weights_error'])}")
    return lines

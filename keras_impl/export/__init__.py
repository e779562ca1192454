"""Deployment parity: export a Keras recurrent model to another runtime, run it there, check it.

    >>> from keras_impl.export import export
    >>> report = export("model.keras", "onnx", out="exports/onnx", verify=True)   # an ExportReport

pipeline  ``export(model, fmt, ...) -> ExportReport``: the Python API that ``bilstm export`` calls
destination   ``--out``: checked, locked for the run, written atomically; nothing of the user's deleted
formats  the formats, their artifact names and the errors every part raises
exporters / worker   the export itself, in a process whose Keras backend is the route's (a Keras process)
native_onnx   bilstm-lab's own ONNX writer from the layer list (the native route of onnx and openvino)
runtimes / run_artifact   the artifact run in its real runtime, in a process without Keras
verify   both, compared with Keras and with the oracle; matrix: every backend x format x model
"""
from .pipeline import ExportReport, export

__all__ = ["ExportReport", "export"]

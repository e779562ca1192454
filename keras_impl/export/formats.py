"""The deployment formats `bilstm export` knows, the artifact each writes, and the errors shared by every part.

An artifact is written at `<out>/<ARTIFACT_NAME[format]>` (a folder for tf_saved_model).
"""

FORMATS = ("onnx", "tf_saved_model", "litert", "openvino", "torch_export", "jax_export")

ARTIFACT_NAME = {
    "onnx": "model.onnx",
    "tf_saved_model": "saved_model",
    "litert": "model.tflite",
    "openvino": "model.xml",  # beside it model.bin, the weights
    "torch_export": "model.pt2",
    "jax_export": "model.jax_export",
}

# Where an artifact that failed its verification lands instead: beside the report, under a name that says so
# (OpenVINO's weights follow its .xml: model.FAILED.bin, which read_model finds by the .xml's stem).
FAILED_ARTIFACT_NAME = {
    "onnx": "model.FAILED.onnx",
    "tf_saved_model": "saved_model.FAILED",
    "litert": "model.FAILED.tflite",
    "openvino": "model.FAILED.xml",
    "torch_export": "model.FAILED.pt2",
    "jax_export": "model.FAILED.jax_export",
}
# Files that travel with an artifact, by the artifact's name: OpenVINO's weights.
COMPANION = {"model.xml": "model.bin", "model.FAILED.xml": "model.FAILED.bin"}

# The artifact's precision and the runtime's: float32 (the default: the artifact float32 and every runtime asked
# for it, OpenVINO through its INFERENCE_PRECISION_HINT), the runtime's own default ("native": OpenVINO chooses
# bfloat16 on a CPU with BF16), or a reduced precision from the format's toolchain (precision.py).
PRECISIONS = ("float32", "native", "float16", "bfloat16", "int8-dynamic", "int8-static")
# What a runtime can be asked to compute in (runtimes.py): bfloat16 is OpenVINO's hint.
RUNTIME_PRECISIONS = ("float32", "native", "bfloat16")

# The Python package that runs each format, and the pip extra that installs it.
RUNTIME_PACKAGE = {
    "onnx": "onnxruntime",
    "tf_saved_model": "tensorflow",
    "litert": "ai_edge_litert",
    "openvino": "openvino",
    "torch_export": "torch",
    "jax_export": "jax",
}


class ExportError(Exception):
    """A route could not produce an artifact. str() is one line: the upstream error, then its cause when known.

    `route` names the route tried ("keras onnx exporter on jax", say); `upstream` is a link to the upstream
    issue when one is known, else None.
    """

    def __init__(self, message, *, route=None, upstream=None):
        super().__init__(" ".join(str(message).split()))
        self.route = route
        self.upstream = upstream


class RuntimeUnavailable(Exception):
    """The runtime for a format is not installed; the message names the package and `pip install .[export]`."""


class ArtifactRunError(Exception):
    """The runtime is installed but could not load or run the artifact; one line, the runtime's error."""

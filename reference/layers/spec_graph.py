"""The ``LayerGraph`` of a ``reference.ModelSpec``: the tutorial's models as a list of layers."""
from __future__ import annotations

from ..cells import CellWeights
from .graph import Layer, LayerGraph


def spec_graph(spec, weights) -> LayerGraph:
    """The ``LayerGraph`` of a ``reference.ModelSpec`` (weights in ``model.get_weights()`` order), any cell."""
    cell = spec.cell_config
    options = {"cell": cell.kind, "activation": cell.activation}
    if cell.kind != "simple_rnn":
        options["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        options["reset_after"] = cell.reset_after
    arrays = iter(weights)

    def direction():  # the next layer's (kernel, recurrent_kernel, bias), bias None without one
        return CellWeights.of([next(arrays) for _ in range(cell.weight_count)])

    layers = [Layer("x", "InputLayer")]
    prev = "x"
    if spec.mask_value is not None:
        layers.append(Layer("masking", "Masking", (prev,), {"mask_value": spec.mask_value}))
        prev = "masking"
    for i, _ in enumerate(spec.layer_units):
        name = f"recurrent_{i}"
        if spec.bidirectional:
            layers.append(Layer(name, "Bidirectional", (prev,), {
                "merge_mode": spec.merge_mode, "return_sequences": True,
                "forward": {**options, "go_backwards": False}, "backward": {**options, "go_backwards": True}},
                (*direction(), *direction())))
        else:
            layers.append(Layer(name, cell.layer_name(), (prev,), {
                "return_sequences": True, "go_backwards": spec.direction == "backward", **options}, direction()))
        prev = name
    layers.append(Layer("head", "TimeDistributed", (prev,), {"activation": "sigmoid"}, (next(arrays), next(arrays))))
    return LayerGraph(("x",), tuple(layers), ("head",))

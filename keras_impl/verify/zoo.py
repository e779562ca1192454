"""The test zoo: recurrent models of the kinds people publish, built in Keras at two sizes, with their inputs.

    >>> from keras_impl.verify import zoo
    >>> model = zoo.build("crnn_ocr", "small", seed=0)     # a Keras 3 model, every weight drawn from the seed
    >>> xs = zoo.inputs("crnn_ocr", "small", seed=0)       # its inputs, in model.inputs order
    >>> zoo.build("crnn_ocr", "small", keras=tf_keras)    # the same model in Keras 2 (the .h5 fixtures)

Each model follows a keras.io example (named in its ``ZooModel.source``) with the prediction part only
(a CTC loss layer, a training loop are not part of what a user verifies):

    bilstm_classifier   IMDB bidirectional LSTM: Embedding(mask_zero), BiLSTM(seq), BiLSTM, Dense sigmoid
    cnn_bilstm          CNN-BiLSTM text classifier: Embedding, Conv1D, BatchNormalization, MaxPooling1D, BiLSTM,
                        Dense softmax
    crnn_ocr            captcha OCR / handwriting recognition: image (width, height, 1) -> Conv2D, MaxPooling2D,
                        Conv2D, MaxPooling2D, Reshape (width as time), Dense relu, Dropout, BiLSTM x2,
                        Dense softmax (characters + CTC blank)
    speech_ctc          CTC speech recognition (DeepSpeech2-like): spectrogram -> Reshape, Conv2D, BatchNormalization,
                        ReLU (x2), Reshape, BiGRU x2 with Dropout, Dense, ReLU, Dense softmax
    bilstm_attention    BiLSTM with Attention (self-attention over a padded batch): Embedding(mask_zero), BiLSTM,
                        Attention([h, h]), GlobalAveragePooling1D, Dense softmax
    bilstm_mha          the same with MultiHeadAttention(h, h) (no residual Add: see _bilstm_mha)
    tagger_layernorm    sequence tagger: Embedding(mask_zero), BiLSTM, LayerNormalization, BiLSTM,
                        LayerNormalization, TimeDistributed(Dense softmax)
    next_frame          next-frame video prediction: ConvLSTM2D, BatchNormalization (x3), Conv3D sigmoid
    siamese_shared      a shared layer and a nested sub-model: one Sequential encoder (Embedding(mask_zero),
                        BiLSTM) called on two inputs, a shared Dense called on both, Concatenate, Dense sigmoid

``small`` sizes (a different size for every dimension) make ``bilstm verify`` take seconds; ``realistic``
sizes are those of the examples (a CRNN on a 200x50 image, batch 16; a 2-layer BiLSTM(128) classifier on
batch 32 x 200 tokens), timed by ``bilstm bench oracle`` (``benchmarks/oracle_zoo.py``).

Weights: every array drawn from the seed by the project's one recipe (``reference.random_arrays``: random,
non-zero, non-symmetric; biases, gammas and betas included), kernels scaled by ``min(1, 3 / sqrt(fan_in))``
so that activations stay near unit size through deep stacks at realistic sizes (a saturated tanh or a
softmax of one-hot rows would hide errors); BatchNormalization's moving variance uniform in [0.5, 2] (a
variance must be positive), its moving mean by the recipe. Inputs: padded id sequences (trailing zeros, the
first full, the last one step long) where an Embedding masks zeros, ids over the whole vocabulary where it
does not, standard normal values for images, spectrograms and frames.

Builders take ``keras`` (the module: Keras 3 by default, ``tf_keras`` for Keras 2), so the Keras 2 fixtures
(``parity_tests/fixtures/make_keras2_fixtures.py``) are these very models. Importing this module imports no
framework.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from reference import random_arrays

SIZES = ("small", "realistic")


@dataclass(frozen=True)
class ZooModel:
    """One zoo model: ``make(keras, **dims)`` builds it (weights as Keras initialises them), ``draw(rng, **dims)``
    its inputs; ``dims[size]`` the sizes; ``layers`` the Keras classes it uses; ``source`` the keras.io example."""
    name: str
    source: str
    make: Callable
    draw: Callable
    dims: dict
    layers: tuple


# ---- inputs ----

def lengths_for(rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    """Sequence lengths in [1, steps]: the first full, the last (batch >= 2) one step long, as verify draws them."""
    lengths = rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    if batch >= 2:
        lengths[-1] = 1
    return lengths


def padded_ids(rng: np.random.Generator, batch: int, steps: int, vocab: int) -> np.ndarray:
    """(batch, steps) int32 ids in [1, vocab) followed by 0 padding (the masked steps)."""
    valid = np.arange(steps)[None, :] < lengths_for(rng, batch, steps)[:, None]
    return np.where(valid, rng.integers(1, vocab, size=(batch, steps)), 0).astype(np.int32)


def all_ids(rng: np.random.Generator, batch: int, steps: int, vocab: int) -> np.ndarray:
    """(batch, steps) int32 ids in [0, vocab), no padding (an Embedding without mask_zero)."""
    return rng.integers(0, vocab, size=(batch, steps)).astype(np.int32)


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ---- the models ----

def _bilstm_classifier(keras, *, vocab, embed, units, steps, **_):
    L = keras.layers
    ids = keras.Input((steps,), dtype="int32", name="tokens")
    h = L.Embedding(vocab, embed, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(units, return_sequences=True))(h)
    h = L.Bidirectional(L.LSTM(units))(h)
    return keras.Model(ids, L.Dense(1, activation="sigmoid")(h), name="bilstm_classifier")


def _cnn_bilstm(keras, *, vocab, embed, filters, kernel, pool, units, classes, steps, **_):
    L = keras.layers
    ids = keras.Input((steps,), dtype="int32", name="tokens")
    h = L.Embedding(vocab, embed)(ids)  # no mask: Conv1D would drop it (it does not support masking)
    h = L.Conv1D(filters, kernel, padding="same", activation="relu")(h)
    h = L.BatchNormalization()(h)
    h = L.MaxPooling1D(pool)(h)
    h = L.Bidirectional(L.LSTM(units))(h)
    return keras.Model(ids, L.Dense(classes, activation="softmax")(h), name="cnn_bilstm")


def _crnn_ocr(keras, *, width, height, filters, dense, units, characters, **_):
    L = keras.layers
    image = keras.Input((width, height, 1), name="image")  # width first: the time axis of the RNNs
    h = L.Conv2D(filters[0], (3, 3), activation="relu", padding="same")(image)
    h = L.MaxPooling2D((2, 2))(h)
    h = L.Conv2D(filters[1], (3, 3), activation="relu", padding="same")(h)
    h = L.MaxPooling2D((2, 2))(h)  # (width / 4, height / 4, filters[1])
    h = L.Reshape((width // 4, (height // 4) * filters[1]))(h)
    h = L.Dense(dense, activation="relu")(h)
    h = L.Dropout(0.2)(h)
    h = L.Bidirectional(L.LSTM(units[0], return_sequences=True, dropout=0.25))(h)
    h = L.Bidirectional(L.LSTM(units[1], return_sequences=True, dropout=0.25))(h)
    return keras.Model(image, L.Dense(characters + 1, activation="softmax")(h), name="crnn_ocr")  # + CTC blank


def _speech_ctc(keras, *, frames, bins, filters, units, dense, characters, **_):
    L = keras.layers
    spectrogram = keras.Input((frames, bins), name="spectrogram")
    h = L.Reshape((-1, bins, 1))(spectrogram)
    h = L.Conv2D(filters, (11, 41), strides=(2, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Conv2D(filters, (11, 21), strides=(1, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)  # (frames / 2, bins / 4, filters)
    h = L.Reshape((-1, h.shape[-2] * h.shape[-1]))(h)
    for u in units:
        h = L.Bidirectional(L.GRU(u, return_sequences=True, reset_after=True))(h)
        h = L.Dropout(0.5)(h)
    h = L.ReLU()(L.Dense(dense)(h))
    return keras.Model(spectrogram, L.Dense(characters + 1, activation="softmax")(h), name="speech_ctc")


def _bilstm_attention(keras, *, vocab, embed, units, classes, steps, **_):
    L = keras.layers
    ids = keras.Input((steps,), dtype="int32", name="tokens")
    h = L.Embedding(vocab, embed, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(units, return_sequences=True))(h)
    h = L.Attention()([h, h])  # query and value masks from the padding
    h = L.GlobalAveragePooling1D()(h)
    return keras.Model(ids, L.Dense(classes, activation="softmax")(h), name="bilstm_attention")


def _bilstm_mha(keras, *, vocab, embed, units, heads, key_dim, classes, steps, **_):
    L = keras.layers
    ids = keras.Input((steps,), dtype="int32", name="tokens")
    h = L.Embedding(vocab, embed, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(units, return_sequences=True))(h)
    # Self-attention over the BiLSTM's sequence (the attention mask from the padding). No residual Add([h, a]):
    # Keras's MultiHeadAttention deletes its inputs' masks in place (multi_head_attention.py L629-631), so another
    # reader of h would see a mask or none by Keras's order of execution, and verify refuses that model by name.
    h = L.MultiHeadAttention(num_heads=heads, key_dim=key_dim)(h, h)
    h = L.GlobalAveragePooling1D()(h)
    return keras.Model(ids, L.Dense(classes, activation="softmax")(h), name="bilstm_mha")


def _tagger_layernorm(keras, *, vocab, embed, units, tags, steps, **_):
    L = keras.layers
    ids = keras.Input((steps,), dtype="int32", name="tokens")
    h = L.Embedding(vocab, embed, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(units[0], return_sequences=True))(h)
    h = L.LayerNormalization()(h)
    h = L.Bidirectional(L.LSTM(units[1], return_sequences=True))(h)
    h = L.LayerNormalization()(h)
    return keras.Model(ids, L.TimeDistributed(L.Dense(tags, activation="softmax"))(h), name="tagger_layernorm")


def _next_frame(keras, *, frames, rows, cols, filters, **_):
    L = keras.layers
    video = keras.Input((frames, rows, cols, 1), name="frames")
    h = video
    for f, k in zip(filters, ((5, 5), (3, 3), (1, 1))):
        # recurrent_activation named: Keras 2's default was hard_sigmoid, another function than Keras 3's (whose
        # default is sigmoid), which verify refuses in a Keras 2 file; so that the Keras 2 fixture is this model.
        h = L.ConvLSTM2D(f, k, padding="same", return_sequences=True, activation="relu",
                         recurrent_activation="sigmoid")(h)
        h = L.BatchNormalization()(h)
    return keras.Model(video, L.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")(h), name="next_frame")


def _siamese_shared(keras, *, vocab, embed, units, dense, steps, **_):
    L = keras.layers
    encoder = keras.Sequential([keras.Input((steps,), dtype="int32"), L.Embedding(vocab, embed, mask_zero=True),
                                L.Bidirectional(L.LSTM(units))], name="encoder")  # nested, and called twice
    project = L.Dense(dense, activation="tanh", name="project")  # a layer called twice
    left, right = keras.Input((steps,), dtype="int32", name="left"), keras.Input((steps,), dtype="int32", name="right")
    h = L.Concatenate()([project(encoder(left)), project(encoder(right))])
    return keras.Model([left, right], L.Dense(1, activation="sigmoid")(h), name="siamese_shared")


def _ids_padded(rng, *, batch, steps, vocab, **_):
    return [padded_ids(rng, batch, steps, vocab)]


ZOO = {m.name: m for m in (
    ZooModel("bilstm_classifier", "keras.io/examples/nlp/bidirectional_lstm_imdb", _bilstm_classifier, _ids_padded,
             {"small": dict(batch=3, steps=9, vocab=23, embed=5, units=4),
              "realistic": dict(batch=32, steps=200, vocab=20000, embed=128, units=128)},
             ("Embedding", "Bidirectional", "LSTM", "Dense")),
    ZooModel("cnn_bilstm", "CNN-BiLSTM text classifier (keras.io/examples/nlp/text_classification_from_scratch's "
             "Conv1D stack before a BiLSTM)", _cnn_bilstm,
             lambda rng, *, batch, steps, vocab, **_: [all_ids(rng, batch, steps, vocab)],
             {"small": dict(batch=3, steps=10, vocab=19, embed=4, filters=6, kernel=3, pool=2, units=5, classes=7),
              "realistic": dict(batch=32, steps=200, vocab=20000, embed=128, filters=128, kernel=5, pool=2, units=64,
                                classes=5)},
             ("Embedding", "Conv1D", "BatchNormalization", "MaxPooling1D", "Bidirectional", "LSTM", "Dense")),
    ZooModel("crnn_ocr", "keras.io/examples/vision/captcha_ocr (and handwriting_recognition)", _crnn_ocr,
             lambda rng, *, batch, width, height, **_: [normal(rng, batch, width, height, 1)],
             {"small": dict(batch=2, width=24, height=12, filters=(3, 5), dense=7, units=(4, 3), characters=6),
              "realistic": dict(batch=16, width=200, height=50, filters=(32, 64), dense=64, units=(128, 64),
                                characters=19)},
             ("Conv2D", "MaxPooling2D", "Reshape", "Dense", "Dropout", "Bidirectional", "LSTM")),
    ZooModel("speech_ctc", "keras.io/examples/audio/ctc_asr", _speech_ctc,
             lambda rng, *, batch, frames, bins, **_: [normal(rng, batch, frames, bins)],
             {"small": dict(batch=2, frames=12, bins=9, filters=3, units=(5,), dense=6, characters=7),
              "realistic": dict(batch=8, frames=200, bins=193, filters=32, units=(256, 256), dense=256,
                                characters=31)},
             ("Reshape", "Conv2D", "BatchNormalization", "ReLU", "Bidirectional", "GRU", "Dropout", "Dense")),
    ZooModel("bilstm_attention", "BiLSTM-attention classifier (keras.layers.Attention over a BiLSTM)",
             _bilstm_attention, _ids_padded,
             {"small": dict(batch=3, steps=8, vocab=17, embed=5, units=4, classes=3),
              "realistic": dict(batch=32, steps=200, vocab=20000, embed=128, units=64, classes=5)},
             ("Embedding", "Bidirectional", "LSTM", "Attention", "GlobalAveragePooling1D", "Dense")),
    ZooModel("bilstm_mha", "BiLSTM with MultiHeadAttention (keras.io/examples/nlp/text_classification_with_transformer's "
             "block over a BiLSTM)", _bilstm_mha, _ids_padded,
             {"small": dict(batch=3, steps=7, vocab=15, embed=4, units=3, heads=2, key_dim=5, classes=4),
              "realistic": dict(batch=32, steps=200, vocab=20000, embed=128, units=64, heads=4, key_dim=32,
                                classes=5)},
             ("Embedding", "Bidirectional", "LSTM", "MultiHeadAttention", "GlobalAveragePooling1D", "Dense")),
    ZooModel("tagger_layernorm", "BiLSTM sequence tagger (NER / POS) with LayerNormalization", _tagger_layernorm,
             _ids_padded,
             {"small": dict(batch=3, steps=9, vocab=21, embed=6, units=(5, 4), tags=7),
              "realistic": dict(batch=32, steps=60, vocab=20000, embed=100, units=(128, 64), tags=17)},
             ("Embedding", "Bidirectional", "LSTM", "LayerNormalization", "TimeDistributed")),  # its Dense is inside
    ZooModel("next_frame", "keras.io/examples/vision/conv_lstm", _next_frame,
             lambda rng, *, batch, frames, rows, cols, **_: [normal(rng, batch, frames, rows, cols, 1)],
             {"small": dict(batch=2, frames=4, rows=6, cols=5, filters=(3, 4, 2)),
              "realistic": dict(batch=4, frames=10, rows=40, cols=40, filters=(32, 32, 32))},
             ("ConvLSTM2D", "BatchNormalization", "Conv3D")),
    ZooModel("siamese_shared", "siamese text matcher: a shared encoder sub-model and a shared Dense",
             _siamese_shared,
             lambda rng, *, batch, steps, vocab, **_: [padded_ids(rng, batch, steps, vocab),
                                                       padded_ids(rng, batch, steps, vocab)],
             {"small": dict(batch=3, steps=7, vocab=13, embed=4, units=5, dense=6),
              "realistic": dict(batch=32, steps=40, vocab=20000, embed=64, units=64, dense=64)},
             ("Sequential", "Embedding", "Bidirectional", "LSTM", "Dense", "Concatenate")),
)}
NAMES = tuple(ZOO)


def _zoo_model(name: str) -> ZooModel:
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {', '.join(ZOO)}")
    return ZOO[name]


def dims(name: str, size: str = "small") -> dict:
    """The sizes of zoo model ``name`` at ``size`` ('small' or 'realistic'), the batch included."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    return dict(_zoo_model(name).dims[size])


def _gain(shape: tuple, name: str) -> float:
    """``min(1, 3 / sqrt(fan_in))`` for a kernel (the product of all but its last axis), 1 for vectors and
    embedding tables (a row is looked up, not summed)."""
    if len(shape) < 2 or "embeddings" in name:
        return 1.0
    return min(1.0, 3.0 / math.sqrt(math.prod(shape[:-1])))


def set_random_weights(model, seed: int) -> None:
    """Every weight of ``model`` (nested models and shared layers once each) drawn from ``seed``: see the module."""
    rng = np.random.default_rng(seed)
    current = model.get_weights()
    variables = model.weights  # same order as get_weights, in Keras 3 and in Keras 2
    if len(variables) != len(current):
        raise RuntimeError("model.weights and model.get_weights() disagree in length")
    drawn = []
    for variable, value in zip(variables, current):
        name = variable.name
        if "moving_variance" in name:
            w = rng.uniform(0.5, 2.0, size=value.shape)
        else:
            w = random_arrays([value.shape], rng)[0] * _gain(value.shape, name)
        drawn.append(w.astype(value.dtype))
    model.set_weights(drawn)


def build(name: str, size: str = "small", *, seed: int = 0, keras=None):
    """Zoo model ``name`` at ``size``, every weight drawn from ``seed``; ``keras`` the Keras module (default:
    ``keras``, Keras 3; ``tf_keras`` for Keras 2)."""
    if keras is None:
        import keras
    model = _zoo_model(name).make(keras, **dims(name, size))
    set_random_weights(model, seed)
    return model


def inputs(name: str, size: str = "small", *, seed: int = 0) -> list[np.ndarray]:
    """The inputs of zoo model ``name`` at ``size`` in ``model.inputs`` order, drawn from ``seed``."""
    return _zoo_model(name).draw(np.random.default_rng(seed), **dims(name, size))


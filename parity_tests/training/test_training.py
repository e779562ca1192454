"""train_stream: fast mode = faithful mode (one fit call per sequence), update for update, on this backend."""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import BACKEND
from keras_impl.parity.tolerances import FAST_VS_FAITHFUL_ABS, FLOAT32_ABS
from reference import ModelSpec, keras_init_weights, model_forward
from reference.problem import make_sequences, make_variable_sequences, mask_from_lengths

# Fast and faithful mode agree to the last bit on the CPU from the first update on (tolerances.py), and
# train_fast runs one compiled loop whatever the length: 20 updates assert what 50 did, at 40% of the
# cost of the slow part (one fit call per update: 83 s of a 2-core TensorFlow pass at 50).
UPDATES = 20

SPECS = {
    # the tutorial's Bidirectional model, and its reversed LSTM (outputs in processing order)
    "bilstm-concat": ModelSpec(timesteps=10, features=1, units=20, direction="bidirectional", merge_mode="concat"),
    "lstm-go-backwards": ModelSpec(timesteps=10, features=1, units=20, direction="backward"),
    # readers' extensions: variable length (Masking, right padding) and two stacked layers, sizes all distinct
    "bilstm-sum-2layers-masked": ModelSpec(timesteps=12, features=1, units=(7, 5), direction="bidirectional",
                                           merge_mode="sum", mask_value=0.0),
}


def stream(spec: ModelSpec, rng, n=UPDATES):
    if spec.mask_value is None:
        xs, ys = make_sequences(n, spec.timesteps, rng)
        return xs, ys, None
    xs, ys, lengths = make_variable_sequences(n, rng, min_length=3, max_length=spec.timesteps)
    return xs, ys, mask_from_lengths(lengths, spec.timesteps)


def fresh_model(spec, weights):
    from keras_impl.models import build_model
    model = build_model(spec)
    model.set_weights(weights)
    return model


def oracle_loss(spec, weights, x, y, mask):
    """Keras's binary cross-entropy (clip 1e-7, mean over valid steps) from the float64 oracle's forward."""
    p = np.clip(model_forward(spec, weights, x)[..., 0], 1e-7, 1 - 1e-7)  # (B, T)
    bce = -(y[..., 0] * np.log(p) + (1 - y[..., 0]) * np.log(1 - p))
    m = np.ones_like(bce) if mask is None else mask.astype(np.float64)
    return float((bce * m).sum() / m.sum())


@pytest.fixture(scope="module")
def trained():
    """Both modes from the same initial weights, once per spec (the slow part: UPDATES fit calls)."""
    from keras_impl.training import train_stream_logs
    cache = {}

    def get(name):
        if name not in cache:
            spec = SPECS[name]
            rng = np.random.default_rng(sorted(SPECS).index(name) + 11)
            weights = [w.astype(np.float32) for w in keras_init_weights(spec, rng)]
            xs, ys, mask = stream(spec, rng)
            out = {"spec": spec, "weights": weights, "xs": xs, "ys": ys, "mask": mask}
            for mode in ("faithful", "fast"):
                model = fresh_model(spec, weights)
                out[mode] = train_stream_logs(model, xs, ys, mode=mode)
                out[mode + "_weights"] = model.get_weights()
                out[mode + "_optimizer"] = [np.asarray(v.numpy(), dtype=np.float64) for v in model.optimizer.variables]
            cache[name] = out
        return cache[name]
    return get


@pytest.mark.parametrize("name", SPECS)
def test_fast_and_faithful_give_the_same_losses(trained, name):
    r = trained(name)
    assert r["fast"]["loss"].shape == (UPDATES,)
    np.testing.assert_allclose(r["fast"]["loss"], r["faithful"]["loss"], rtol=0, atol=FAST_VS_FAITHFUL_ABS,
                               err_msg=f"per-update losses, {name}")
    np.testing.assert_allclose(r["fast"]["accuracy"], r["faithful"]["accuracy"], rtol=0, atol=FAST_VS_FAITHFUL_ABS,
                               err_msg=f"per-update accuracies, {name}")


@pytest.mark.parametrize("name", SPECS)
def test_fast_and_faithful_end_with_the_same_weights_and_optimizer_state(trained, name):
    r = trained(name)
    for k, (a, b) in enumerate(zip(r["fast_weights"], r["faithful_weights"])):
        np.testing.assert_allclose(a, b, rtol=0, atol=FAST_VS_FAITHFUL_ABS, err_msg=f"weight {k}, {name}")
    assert len(r["fast_optimizer"]) == len(r["faithful_optimizer"])
    for k, (a, b) in enumerate(zip(r["fast_optimizer"], r["faithful_optimizer"])):
        np.testing.assert_allclose(a, b, rtol=0, atol=FAST_VS_FAITHFUL_ABS, err_msg=f"optimizer variable {k}, {name}")
    assert int(r["fast_optimizer"][0]) == UPDATES, "the optimizer's iteration count is one per update"
    moved = max(np.abs(a - b).max() for a, b in zip(r["fast_weights"], r["weights"]))
    assert moved > 1e-3, "training must change the weights"


@pytest.mark.parametrize("name", SPECS)
def test_first_loss_is_the_oracle_loss_of_the_initial_weights(trained, name):
    # The loss of update k is computed before update k: the first one belongs to the initial weights.
    r = trained(name)
    mask = None if r["mask"] is None else r["mask"][:1]
    expected = oracle_loss(r["spec"], r["weights"], r["xs"][:1], r["ys"][:1], mask)
    assert abs(float(r["fast"]["loss"][0]) - expected) < FLOAT32_ABS


def test_train_stream_returns_float32_losses_and_compiles_like_the_tutorial(rng):
    import keras

    from keras_impl.training import train_stream
    spec = SPECS["bilstm-concat"]
    model = fresh_model(spec, keras_init_weights(spec, rng))
    xs, ys, _ = stream(spec, rng, n=3)
    losses = train_stream(model, xs, ys)
    assert isinstance(losses, np.ndarray) and losses.dtype == np.float32 and losses.shape == (3,)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(0.001)
    assert model.loss == "binary_crossentropy"


@pytest.mark.skipif(BACKEND != "jax", reason="train_many (jax.vmap over seeds) exists on the JAX backend only")
def test_seeds_trained_together_equal_seeds_trained_alone(rng):
    from keras_impl import training_jax
    from keras_impl.training import build_training_state, ensure_compiled, train_stream_logs
    spec = SPECS["bilstm-sum-2layers-masked"]
    weights = [[w.astype(np.float32) for w in keras_init_weights(spec, rng)] for _ in range(3)]
    streams = [stream(spec, rng, n=8) for _ in range(3)]
    template = fresh_model(spec, weights[0])
    logs, final = training_jax.train_many(template, weights, np.stack([s[0] for s in streams]),
                                          np.stack([s[1] for s in streams]), chunk_updates=4)  # state carried over 2 chunks
    model = fresh_model(spec, weights[0])  # one model for the seeds alone (one compile), reset between seeds
    ensure_compiled(model)
    build_training_state(model, streams[0][0].astype(np.float32), streams[0][1].astype(np.float32), None)
    fresh_optimizer = [np.array(v.numpy()) for v in model.optimizer.variables]
    for s in range(3):
        model.set_weights(weights[s])
        for variable, value in zip(model.optimizer.variables, fresh_optimizer):
            variable.assign(value)
        alone = train_stream_logs(model, streams[s][0], streams[s][1])
        np.testing.assert_allclose(logs["loss"][s], alone["loss"], rtol=0, atol=FAST_VS_FAITHFUL_ABS, err_msg=f"seed {s}")
        for k, (a, b) in enumerate(zip(final[s], model.get_weights())):
            np.testing.assert_allclose(a, b, rtol=0, atol=FAST_VS_FAITHFUL_ABS, err_msg=f"seed {s} weight {k}")
    x = np.stack([s[0][:4] for s in streams])
    probabilities = training_jax.predict_many(template, final, x)  # (S, 4, T, 1)
    for s in range(3):
        expected = model_forward(spec, [w.astype(np.float64) for w in final[s]], x[s])
        np.testing.assert_allclose(probabilities[s], expected, rtol=0, atol=FLOAT32_ABS, err_msg=f"seed {s}")


def test_unknown_mode_is_refused(rng):
    from keras_impl.training import train_stream
    spec = SPECS["lstm-go-backwards"]
    xs, ys, _ = stream(spec, rng, n=2)
    with pytest.raises(ValueError, match="unknown mode 'quick'; expected one of 'fast', 'faithful'"):
        train_stream(fresh_model(spec, keras_init_weights(spec, rng)), xs, ys, mode="quick")


@pytest.mark.parametrize("xs_shape, ys_shape, message", [
    ((2, 9, 1), (2, 9, 1), r"xs must have shape \(updates, 10, 1\) for this model, got \(2, 9, 1\)"),
    ((2, 10, 1), (2, 10), r"ys must have shape \(2, 10, 1\) \(one label a step\), got \(2, 10\)"),
    ((10, 1), (10, 1), r"xs must have shape \(updates, timesteps, features\), got \(10, 1\)"),
], ids=["wrong-timesteps", "ys-without-feature-axis", "no-update-axis"])
def test_bad_shapes_name_the_argument(rng, xs_shape, ys_shape, message):
    from keras_impl.training import train_stream
    spec = SPECS["lstm-go-backwards"]
    model = fresh_model(spec, keras_init_weights(spec, rng))
    with pytest.raises(ValueError, match=message):
        train_stream(model, np.zeros(xs_shape), np.zeros(ys_shape))

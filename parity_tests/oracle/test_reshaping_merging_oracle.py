"""The oracle's reshaping and merging layers (reference/layers/reshaping.py, merging.py), by hand, NumPy only.

Each value below is worked out by hand from the module docstrings' equations (Keras 3.15.1's rules): the
half-pixel bilinear rows, the masked stand-ins of Maximum/Minimum/Multiply, Concatenate's mask on either axis,
and that every reshaping layer drops a mask unless told the backend keeps it.
"""
import numpy as np
import pytest

from reference.layers import Layer, layer_forward

B_MASK = np.array([[True, True, False]])  # (B=1, T=3)


def run(kind, inputs, masks=None, **options):
    inputs = [np.asarray(x, np.float64) for x in inputs]
    masks = [None] * len(inputs) if masks is None else masks
    return layer_forward(Layer("l", kind, tuple(f"in{k}" for k in range(len(inputs))), options), inputs, masks)


def test_reshape_resolves_minus_one_in_c_order():
    x = np.arange(24.0).reshape(2, 3, 4)
    y, _ = run("Reshape", [x], target_shape=(4, -1))
    assert y.shape == (2, 4, 3)
    assert y[1, 0].tolist() == [12.0, 13.0, 14.0] and y[0, 3].tolist() == [9.0, 10.0, 11.0]


def test_permute_counts_axes_from_one():
    x = np.arange(24.0).reshape(2, 3, 4)
    y, _ = run("Permute", [x], dims=(2, 1))
    assert y.shape == (2, 4, 3) and y[1, 3, 2] == x[1, 2, 3]


def test_repeat_vector_repeats_each_row_on_a_new_axis_1():
    y, _ = run("RepeatVector", [[[1.0, 2.0], [3.0, 4.0]]], n=3)
    assert y.shape == (2, 3, 2) and y[1].tolist() == [[3.0, 4.0]] * 3


def test_flatten_channels_first_moves_the_channels_last_first():
    x = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]  # (B=1, C=2, T=3)
    assert run("Flatten", [x], data_format="channels_first")[0].tolist() == [[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]]
    assert run("Flatten", [x])[0].tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]
    assert run("Flatten", [[7.0, 8.0]])[0].tolist() == [[7.0], [8.0]]  # rank 1: (B, 1)


def test_zero_padding_on_the_steps_or_the_spatial_axes():
    y, _ = run("ZeroPadding1D", [np.array([1.0, 2.0]).reshape(1, 2, 1)], padding=((1, 2),))
    assert y[0, :, 0].tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]
    x = np.ones((1, 2, 3, 4))  # channels_first: C=2, H=3, W=4
    y, _ = run("ZeroPadding2D", [x], padding=((1, 0), (2, 3)), data_format="channels_first")
    assert y.shape == (1, 2, 4, 9) and y.sum() == x.sum() and y[0, 0, 0].sum() == 0 and y[0, 0, 1, 2] == 1
    y, _ = run("ZeroPadding2D", [x], padding=((1, 0), (2, 3)))  # channels_last: H=2, W=3
    assert y.shape == (1, 3, 8, 4)


def test_cropping_keeps_the_middle():
    x = np.arange(5.0).reshape(1, 5, 1)
    assert run("Cropping1D", [x], cropping=((1, 2),))[0][0, :, 0].tolist() == [1.0, 2.0]
    x = np.arange(30.0).reshape(1, 5, 6, 1)
    y, _ = run("Cropping2D", [x], cropping=((1, 0), (2, 1)))
    assert y.shape == (1, 4, 3, 1) and y[0, 0, 0, 0] == x[0, 1, 2, 0] and y[0, -1, -1, 0] == x[0, 4, 4, 0]
    with pytest.raises(ValueError, match="crops 3\\+2 of 5"):
        run("Cropping1D", [np.zeros((1, 5, 1))], cropping=((3, 2),))


def test_nearest_up_sampling_repeats():
    y, _ = run("UpSampling1D", [np.array([1.0, 2.0]).reshape(1, 2, 1)], size=2)
    assert y[0, :, 0].tolist() == [1.0, 1.0, 2.0, 2.0]
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y, _ = run("UpSampling2D", [x], size=(1, 2), interpolation="nearest")
    assert y[0, :, :, 0].tolist() == [[1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0]]


def test_bilinear_up_sampling_samples_half_pixel_centres_with_clamped_edges():
    # Row [0, 1, 2] by 2: output i reads s = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, 1.75, 2.25,
    # the ends clamped to the first and last pixel.
    x = np.array([0.0, 1.0, 2.0]).reshape(1, 1, 3, 1)
    y, _ = run("UpSampling2D", [x], size=(1, 2), interpolation="bilinear")
    assert np.allclose(y[0, 0, :, 0], [0.0, 0.25, 0.75, 1.25, 1.75, 2.0], atol=1e-15)
    # by 3: s = -1/3, 0, 1/3, 2/3, 1, 4/3, 5/3, 2, 7/3
    y, _ = run("UpSampling2D", [x], size=(1, 3), interpolation="bilinear")
    assert np.allclose(y[0, 0, :, 0], [0, 0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2, 2], atol=1e-15)
    # the two axes separately, channels_first: a constant stays constant, each axis as above
    x = np.stack([np.full((2, 3), 5.0), np.array([[0.0, 1.0, 2.0], [4.0, 5.0, 6.0]])])[None]  # (1, C=2, 2, 3)
    y, _ = run("UpSampling2D", [x], size=(2, 2), interpolation="bilinear", data_format="channels_first")
    assert y.shape == (1, 2, 4, 6) and np.allclose(y[0, 0], 5.0)
    assert np.allclose(y[0, 1, :, 0], [0.0, 1.0, 3.0, 4.0]) and np.allclose(y[0, 1, 0], [0, 0.25, 0.75, 1.25, 1.75, 2])
    with pytest.raises(ValueError, match="bicubic"):
        run("UpSampling2D", [x], size=(2, 2), interpolation="bicubic")


RESHAPING_CASES = [("Reshape", (1, 3, 2), {"target_shape": (2, 3)}), ("Permute", (1, 3, 2), {"dims": (2, 1)}),
                   ("Flatten", (1, 3, 2), {}), ("ZeroPadding1D", (1, 3, 2), {"padding": ((1, 1),)}),
                   ("Cropping1D", (1, 3, 2), {"cropping": ((1, 0),)}), ("UpSampling1D", (1, 3, 2), {"size": 2})]


@pytest.mark.parametrize("kind, shape, options", RESHAPING_CASES, ids=[c[0] for c in RESHAPING_CASES])
def test_reshaping_layers_drop_the_mask_unless_the_backend_keeps_it(kind, shape, options):
    x = np.ones(shape)
    assert run(kind, [x], [B_MASK], **options)[1] is None
    assert run(kind, [x], [B_MASK], **options, keeps_mask=True)[1] is B_MASK


def test_add_subtract_average_broadcast_lower_ranks_at_axis_1():
    x = np.arange(12.0).reshape(1, 3, 4)
    v = np.array([[1.0, 2.0, 3.0, 4.0]])  # (B, 4): expanded to (B, 1, 4)
    assert np.array_equal(run("Add", [x, v, x])[0], 2 * x + v[:, None])
    assert np.array_equal(run("Subtract", [v, x])[0], v[:, None] - x)
    assert np.array_equal(run("Average", [x, v])[0], (x + v[:, None]) / 2)
    with pytest.raises(ValueError, match="exactly 2"):
        run("Subtract", [x, x, x])


def test_add_mask_is_the_or_of_the_masks_or_none():
    a, b = np.array([[True, False, False]]), np.array([[False, False, True]])
    x = np.ones((1, 3, 2))
    assert run("Add", [x, x], [a, b])[1].tolist() == [[True, False, True]]
    assert run("Average", [x, x], [a, None])[1] is None
    assert run("Subtract", [x, x], [a, b])[0].tolist() == np.zeros((1, 3, 2)).tolist()  # values ignore masks


def test_maximum_and_minimum_take_the_masked_stand_ins_keras_computes():
    # x1 = [1, 5] valid at step 0 only, x2 = [3, 2] valid at step 1 only: x2 takes x1's entry where x2 is masked
    # ([1, 2]), the running output takes x2's where x1 is masked ([1, 2]), then max/min: [1, 2] either way.
    x1, x2 = np.array([1.0, 5.0]).reshape(1, 2, 1), np.array([3.0, 2.0]).reshape(1, 2, 1)
    m1, m2 = np.array([[True, False]]), np.array([[False, True]])
    for kind in ("Maximum", "Minimum"):
        y, mask = run(kind, [x1, x2], [m1, m2])
        assert y.ravel().tolist() == [1.0, 2.0] and mask.tolist() == [[True, True]]
    # x2 unmasked: only the running output's masked entries are replaced; the mask' is None
    y, mask = run("Maximum", [x1, x2], [m1, None])
    assert y.ravel().tolist() == [3.0, 2.0] and mask is None
    # both masked at a step: the first input's value
    y, mask = run("Minimum", [x1, x2], [np.array([[False, False]])] * 2)
    assert y.ravel().tolist() == [1.0, 5.0] and mask.tolist() == [[False, False]]
    assert run("Maximum", [x1, x2, x1 - 4])[0].ravel().tolist() == [3.0, 5.0]  # no masks: plain max of three


def test_multiply_counts_masked_entries_as_one_and_zeroes_where_no_input_is_valid():
    x1, x2 = np.array([2.0, 5.0]).reshape(1, 2, 1), np.array([3.0, 4.0]).reshape(1, 2, 1)
    m1, m2 = np.array([[True, False]]), np.array([[False, False]])
    y, mask = run("Multiply", [x1, x2], [m1, m2])
    assert y.ravel().tolist() == [2.0, 0.0] and mask.tolist() == [[True, False]]
    y, mask = run("Multiply", [x1, x2], [m1, None])  # not every input masked: stand-ins, no zeroing, no mask
    assert y.ravel().tolist() == [6.0, 4.0] and mask is None


def test_concatenate_mask_joins_on_the_time_axis_and_ors_on_the_last():
    x1, x2 = np.ones((1, 3, 2)), np.zeros((1, 2, 2))
    m1 = np.array([[True, True, False]])
    y, mask = run("Concatenate", [x1, x2], [m1, None], axis=1)
    assert y.shape == (1, 5, 2) and mask.tolist() == [[True, True, False, True, True]]
    y, mask = run("Concatenate", [x1, x2[:, :1].repeat(3, 1)], [m1, np.array([[False, True, False]])], axis=-1)
    assert y.shape == (1, 3, 4) and mask.tolist() == [[True, True, False]]
    assert run("Concatenate", [x1, x1], [m1, None], axis=2)[1].tolist() == [[True, True, True]]  # None: all True
    assert run("Concatenate", [x1, x1, x1], axis=1)[1] is None


def test_dot_contracts_the_named_axes_in_keras_order():
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 3))
    y, mask = run("Dot", [x1, x2], [B_MASK, None], axes=(1, 2), normalize=False)
    assert y.shape == (2, 4, 5) and mask is None
    assert np.isclose(y[1, 2, 4], sum(x1[1, k, 2] * x2[1, 4, k] for k in range(3)))
    y, _ = run("Dot", [x1, x1], axes=-1, normalize=False)  # a negative int: each input's own last axis
    assert np.isclose(y[0, 1, 2], x1[0, 1] @ x1[0, 2])


def test_dot_of_two_vectors_is_b_by_1_and_normalize_gives_the_cosine():
    a, b = np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[4.0, 3.0], [1.0, 1.0]])
    assert run("Dot", [a, b], axes=1, normalize=False)[0].tolist() == [[24.0], [0.0]]
    y, _ = run("Dot", [a, b], axes=1, normalize=True, epsilon=1e-7)
    assert np.allclose(y, [[24 / 25], [0.0]])  # a zero row: times min(inf, 1 / epsilon) = 0, not NaN

"""TF32 is off for the Keras tests (parity_tests/conftest.py), as for `bilstm parity`.

The conftest imports no framework itself (the oracle's tests run without one):
it switches TF32 off once collection shows a Keras test will run. This checks
that the switch happened, in this process's framework. On a CPU TF32 changes
nothing, but the flags are set all the same, so the check holds everywhere.
"""
from __future__ import annotations

import os


def test_tf32_is_off_in_this_process(backend):
    assert os.environ.get("NVIDIA_TF32_OVERRIDE") == "0"  # cuBLAS and cuDNN, whatever a framework asks
    if backend == "torch":
        import torch
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    elif backend == "jax":
        import jax
        assert jax.config.jax_default_matmul_precision == "highest"
    else:
        import tensorflow as tf
        assert not tf.config.experimental.tensor_float_32_execution_enabled()

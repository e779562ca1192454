"""The same training step written directly in PyTorch and in JAX: the floor Keras is measured against.

Model, loss and optimizer as in ``benchmarks.keras_step``: a bidirectional LSTM
of U units a direction over (B, T, D) inputs, outputs concatenated [fwd, bwd],
a per-step Dense(1) + sigmoid head, binary cross-entropy with probabilities
clipped to [1e-7, 1 - 1e-7] averaged over B*T, one Adam update (lr 1e-3).

- ``torch`` / ``native``: ``torch.nn.LSTM(bidirectional=True, batch_first=True)``:
  cuDNN on a GPU, ATen's own fused CPU kernel on the CPU; ``torch.optim.Adam``.
- ``jax`` / ``scan``: the cell under ``jax.lax.scan``, one scan a direction, the
  input projection x @ W for all steps hoisted out of the loop, the whole step
  (forward, ``jax.grad``, Adam in Keras's form) under one ``jax.jit``.
- ``jax`` / ``cudnn``: ``jax.experimental.rnn.lstm`` (cuDNN, both directions in
  one call; GPU only), the rest as in ``scan``.
"""
from __future__ import annotations

import gc
import platform

import numpy as np

from benchmarks.cases import Case
from benchmarks.step import Step
from keras_impl.backend import installed_version  # the standard library only: no framework loaded

EPS = 1e-7  # probability clipping, as Keras's binary_crossentropy


def context(framework: str) -> dict:
    return {"keras": None, framework: installed_version(framework), "numpy": installed_version("numpy"),
            "python": platform.python_version()}


def cleanup(framework: str):
    def clean():
        gc.collect()
        if framework == "torch":
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        elif framework == "jax":
            import jax
            jax.clear_caches()
    return clean


def _data(case: Case) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((case.batch, case.timesteps, case.features), dtype=np.float32)  # (B, T, D)
    y = (rng.random((case.batch, case.timesteps, 1)) < 0.5).astype(np.float32)    # (B, T, 1)
    return x, y


# ---------------------------------------------------------------- PyTorch


def build_torch(case: Case) -> Step:
    import torch
    import torch.nn.functional as F
    from torch import nn

    device = torch.device("cuda" if case.device == "gpu" else "cpu")
    torch.manual_seed(0)

    class BiLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(case.features, case.units, batch_first=True, bidirectional=True)
            self.head = nn.Linear(2 * case.units, 1)

        def forward(self, x):                 # (B, T, D)
            h, _ = self.lstm(x)               # (B, T, 2U), [fwd, bwd], both in time order
            return torch.sigmoid(self.head(h))  # (B, T, 1)

    model = BiLSTM().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=EPS)
    x, y = (torch.from_numpy(a).to(device) for a in _data(case))

    def run():
        optimizer.zero_grad(set_to_none=True)
        p = model(x).clamp(EPS, 1 - EPS)
        loss = F.binary_cross_entropy(p, y)
        loss.backward()
        optimizer.step()
        return loss

    def sync(out):
        if device.type == "cuda":
            torch.cuda.synchronize()

    cudnn = device.type == "cuda" and torch.backends.cudnn.enabled and torch.backends.cudnn.is_available()
    kernel = "cudnn" if cudnn else ("aten-cuda" if device.type == "cuda" else "aten-cpu")
    return Step(run=run, sync=sync, describe=lambda: {"kernel": kernel, "jit_compile": False, "step_api": "eager"})


# ---------------------------------------------------------------- JAX


def _adam(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=EPS):
    """Keras's Adam: epsilon outside the square root, bias correction folded into the step size."""
    import jax
    import jax.numpy as jnp
    m, v, t = state
    t = t + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    alpha = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    params = jax.tree.map(lambda w, m, v: w - alpha * m / (jnp.sqrt(v) + eps), params, m, v)
    return params, (m, v, t)


def _bce(p, y):
    import jax.numpy as jnp
    p = jnp.clip(p, EPS, 1 - EPS)
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


def _scan_direction(W, R, b, x):
    """One LSTM direction over time-major x (T, B, D) -> hidden states (T, B, U).

    z_t = x_t W + h R + b; i, f, g, o = split(z_t); c = s(f) c + s(i) tanh(g); h = s(o) tanh(c)
    """
    import jax
    import jax.numpy as jnp
    xw = x @ W + b  # (T, B, 4U): the input projection of every step in one matmul, outside the loop
    u = R.shape[0]
    zeros = jnp.zeros((x.shape[1], u), x.dtype)  # (B, U)

    def cell(carry, xw_t):
        h, c = carry
        z = xw_t + h @ R  # (B, 4U)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    _, hs = jax.lax.scan(cell, (zeros, zeros), xw)
    return hs


def _scan_forward(params, x):
    import jax
    import jax.numpy as jnp
    xt = jnp.swapaxes(x, 0, 1)                              # (T, B, D)
    hf = _scan_direction(*params["fwd"], xt)                # (T, B, U)
    hb = _scan_direction(*params["bwd"], xt[::-1])[::-1]    # (T, B, U), back in time order
    h = jnp.concatenate([hf, hb], axis=-1)                  # (T, B, 2U)
    return jnp.swapaxes(jax.nn.sigmoid(h @ params["head_w"] + params["head_b"]), 0, 1)  # (B, T, 1)


def _init_scan(case: Case, rng: np.random.Generator) -> dict:
    d, u = case.features, case.units
    s = 1.0 / np.sqrt(u)
    direction = lambda: tuple(rng.uniform(-s, s, shape).astype(np.float32) for shape in ((d, 4 * u), (u, 4 * u), (4 * u,)))  # noqa: E731
    return {"fwd": direction(), "bwd": direction(),
            "head_w": rng.uniform(-s, s, (2 * u, 1)).astype(np.float32), "head_b": np.zeros(1, np.float32)}


def _cudnn_forward(case: Case):
    """Forward through jax.experimental.rnn.lstm: one cuDNN call for both directions, batch-major."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    def forward(params, x):
        b = x.shape[0]
        zeros = jnp.zeros((2, b, case.units), x.dtype)  # (directions * layers, B, U)
        lengths = jnp.full((b,), case.timesteps, jnp.int32)
        # Positional: input_size, hidden_size, num_layers, dropout, bidirectional are custom_vjp's nondiff_argnums.
        h, _, _ = rnn.lstm(x, zeros, zeros, params["rnn"], lengths, case.features, case.units, 1, 0.0, True)  # (B, T, 2U)
        return jax.nn.sigmoid(h @ params["head_w"] + params["head_b"])  # (B, T, 1)
    return forward


def _build_jax(case: Case, path: str) -> Step:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    if path == "scan":
        params, forward, kernel = _init_scan(case, rng), _scan_forward, "lax.scan"
    else:
        from jax.experimental import rnn
        if jax.default_backend() != "gpu":
            raise NotImplementedError("jax.experimental.rnn.lstm runs on a GPU only (cuDNN)")
        u = case.units
        params = {"rnn": rnn.init_lstm_weight(jax.random.key(0), case.features, u, 1, True),
                  "head_w": rng.uniform(-0.1, 0.1, (2 * u, 1)).astype(np.float32), "head_b": np.zeros(1, np.float32)}
        forward, kernel = _cudnn_forward(case), "jax.experimental.rnn(cudnn)"
    params = jax.tree.map(jnp.asarray, params)
    state = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))
    x, y = (jnp.asarray(a) for a in _data(case))

    @jax.jit
    def train_step(params, state, x, y):
        loss, grads = jax.value_and_grad(lambda p: _bce(forward(p, x), y))(params)
        params, state = _adam(params, grads, state)
        return params, state, loss

    holder = {"params": params, "state": state}

    def run():
        holder["params"], holder["state"], loss = train_step(holder["params"], holder["state"], x, y)
        return holder["params"], loss

    return Step(run=run, sync=jax.block_until_ready,
                describe=lambda: {"kernel": kernel, "jit_compile": True, "step_api": "jax.jit"})


BUILDERS = {
    ("torch", "native"): build_torch,
    ("jax", "scan"): lambda case: _build_jax(case, "scan"),
    ("jax", "cudnn"): lambda case: _build_jax(case, "cudnn"),
}

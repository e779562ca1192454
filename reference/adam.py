"""Adam exactly as Keras 3.15.1 takes its steps (``keras/src/optimizers/adam.py`` ``update_step``).

At step t = 1, 2, ... (``iterations + 1``), for every weight w with gradient g:

    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)    bias correction folded into the step size
    m     = m + (g - m) * (1 - beta_1)                    = beta_1 m + (1 - beta_1) g
    v     = v + (g**2 - v) * (1 - beta_2)                 = beta_2 v + (1 - beta_2) g**2
    w     = w - (m * alpha) / (sqrt(v) + epsilon)         epsilon outside the square root

Defaults ``lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7``. The terms are
written in Keras's order (``m + (g - m)(1 - b1)``, not ``b1 m + (1 - b1) g``)
so that float64 agrees with TensorFlow to the last bit (Keras's torch backend
has its own fused ``torch_adam.py`` that computes ``b1 m + (1 - b1) g``: the
same step up to rounding). PyTorch's own ``torch.optim.Adam`` differs: it
bias-corrects v under the square root before adding epsilon.

``betas_through_float32=True`` reproduces TensorFlow's float64 arithmetic:
there ``ops.cast(self.beta_1, variable.dtype)`` turns the Python float into a
float32 tensor before casting it to float64, so the powers ``beta**t`` use
``float32(0.9) = 0.89999997615...`` (while ``1 - beta`` stays a Python double).
JAX and torch keep the betas in float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._checks import as_float64


@dataclass
class Adam:
    """Keras's Adam with its state (``m``, ``v``, ``iterations``); ``apply`` updates weights in place.

    Every array stays float64: the oracle computes in float64 whatever Keras rounds to.
    """
    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    betas_through_float32: bool = False
    iterations: int = 0
    m: list = field(default_factory=list, repr=False)
    v: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        for name in ("learning_rate", "beta_1", "beta_2", "epsilon"):
            value = getattr(self, name)
            # Python and NumPy real scalars (np.float32(1e-3) included); not bools, strings or arrays
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            setattr(self, name, float(value))
        if self.learning_rate <= 0.0:
            raise ValueError(f"learning_rate must be > 0 (a step downhill), got {self.learning_rate!r}")
        if self.epsilon <= 0.0:
            raise ValueError(f"epsilon must be > 0 (it keeps m / (sqrt(v) + epsilon) finite where a gradient is 0), "
                             f"got {self.epsilon!r}")
        if not 0.0 <= self.beta_1 < 1.0 or not 0.0 <= self.beta_2 < 1.0:
            raise ValueError(f"beta_1 and beta_2 must lie in [0, 1), got beta_1={self.beta_1}, beta_2={self.beta_2}")
        if isinstance(self.betas_through_float32, np.bool_):
            self.betas_through_float32 = bool(self.betas_through_float32)
        if not isinstance(self.betas_through_float32, bool):
            raise TypeError(f"betas_through_float32 must be True or False, got {self.betas_through_float32!r}")
        if isinstance(self.iterations, (bool, np.bool_)) or not isinstance(self.iterations, (int, np.integer)) \
                or self.iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, got {self.iterations!r}")
        self.iterations = int(self.iterations)

    def _power(self, beta: float, t: int) -> float:
        base = float(np.float32(beta)) if self.betas_through_float32 else beta
        return base ** t

    def apply(self, weights: list[np.ndarray], grads) -> list[np.ndarray]:
        """One update of every weight by its gradient (same order and shapes). Returns ``weights``."""
        if len(grads) != len(weights):
            raise ValueError(f"grads must hold one array per weight ({len(weights)}), got {len(grads)}")
        grads = [as_float64(f"grads[{k}]", g, shape=w.shape) for k, (g, w) in enumerate(zip(grads, weights))]
        if not self.m:  # Keras creates the slots at zero on the first apply (``build``)
            self.m = [np.zeros_like(w) for w in weights]
            self.v = [np.zeros_like(w) for w in weights]
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1.0 - self._power(self.beta_2, t)) / (1.0 - self._power(self.beta_1, t))
        for w, g, m, v in zip(weights, grads, self.m, self.v):
            m += (g - m) * (1.0 - self.beta_1)
            v += (np.square(g) - v) * (1.0 - self.beta_2)
            w -= (m * alpha) / (np.sqrt(v) + self.epsilon)
        self.iterations = t
        return weights

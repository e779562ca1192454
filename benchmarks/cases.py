"""The benchmark's cases and the FLOP model that turns a step time into GFLOP/s.

A case is one model size timed by one implementation on one device through one
kernel path. The model is the tutorial's, scaled: Bidirectional(LSTM(U),
"concat") over (B, T, D) inputs, a per-step Dense(1, sigmoid) head, binary
cross-entropy averaged over B*T, one Adam update: one training step.

FLOP model (multiply and add counted as 2 FLOPs; elementwise ops as 1 each):

    one direction, one step:   2*B*D*4U  (x_t @ W)  +  2*B*U*4U  (h @ R)
                             + 4*B*U (bias)  + 3*B*U (sigmoids) + 2*B*U (tanh)
                             + 3*B*U (products) + 1*B*U (sum)           = 8BU(D+U) + 13BU
    head, one step:            2*B*2U + 2*B  (Dense on the concat, sigmoid)
    forward pass:              F = T * (2 * (8BU(D+U) + 13BU) + 4BU + 2B)
    training step:             3F (backward = 2 forward, the usual rule for matmul-bound nets)
                             + 12P (Adam: about 12 FLOPs a parameter), P = 2*(4U(D+U) + 4U) + 2U + 1

GFLOP/s = training-step FLOPs / median step time / 1e9. The model counts useful
work only: padding, recomputation and framework overhead make achieved GFLOP/s
lower, never higher.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

BATCHES = (1, 8, 64, 256, 1024)
TIMESTEPS = (10, 100)
UNITS = (20, 128, 512, 1024)
FEATURES = 16  # input features D: the tutorial has 1; 16 makes x_t @ W a real matmul without dominating h @ R
# Quick cases (CI, `bilstm bench --quick`): small enough for a few seconds a backend on a laptop CPU.
QUICK_SHAPES = ((1, 10, 20), (8, 10, 20), (64, 10, 128))

# Implementations: Keras on one backend, or a framework used directly.
IMPLS = ("keras", "raw")
# Kernel paths a case may ask for: Keras use_cudnn="auto" or False; raw torch's nn.LSTM
# (cuDNN on a GPU, ATen's own kernel on the CPU); raw JAX lax.scan; jax.experimental.rnn (cuDNN, GPU only).
PATHS = ("auto", "generic", "native", "scan", "cudnn")


@dataclass(frozen=True)
class Case:
    impl: str          # keras | raw
    framework: str     # jax | torch | tensorflow (for keras: the Keras backend)
    device: str        # cpu | gpu
    path: str          # one of PATHS: the kernel path asked for (the record says which ran)
    batch: int
    timesteps: int
    units: int
    features: int = FEATURES
    dtype: str = "float32"
    tf32: bool = False
    n_devices: int = 1  # >1: keras.distribution.DataParallel over that many devices (JAX)

    def __post_init__(self):
        if self.impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {self.impl!r}")
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {self.path!r}")
        for name in ("batch", "timesteps", "units", "features", "n_devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @property
    def group(self) -> str:
        """Cases that one worker process runs: same implementation, framework, device, path, TF32."""
        dp = f"-dp{self.n_devices}" if self.n_devices > 1 else ""
        return f"{self.impl}-{self.framework}-{self.device}-{self.path}{dp}" + ("-tf32" if self.tf32 else "")

    @property
    def key(self) -> str:
        return f"{self.group}|B{self.batch}|T{self.timesteps}|U{self.units}|D{self.features}|{self.dtype}"

    def as_dict(self) -> dict:
        return asdict(self)


def parameters(units: int, features: int) -> int:
    """P: both directions' kernel, recurrent kernel and bias, and the Dense head."""
    return 2 * (4 * units * (features + units) + 4 * units) + 2 * units + 1


def forward_flops(batch: int, timesteps: int, units: int, features: int) -> int:
    b, u, d = batch, units, features
    per_direction = 8 * b * u * (d + u) + 13 * b * u
    return timesteps * (2 * per_direction + 4 * b * u + 2 * b)


def train_step_flops(batch: int, timesteps: int, units: int, features: int = FEATURES) -> int:
    return 3 * forward_flops(batch, timesteps, units, features) + 12 * parameters(units, features)


def shapes(batches=BATCHES, timesteps=TIMESTEPS, units=UNITS) -> list[tuple[int, int, int]]:
    """(B, T, U) in order of increasing FLOPs: a sweep meets the small cases, which calibrate its time estimates, first."""
    grid = [(b, t, u) for b in batches for t in timesteps for u in units]
    return sorted(grid, key=lambda s: (train_step_flops(*s), s))

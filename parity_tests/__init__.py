"""bilstm-lab's parity suites: the oracle against itself and against Keras on every backend.

Run once per backend, one backend per process: ``KERAS_BACKEND=jax pytest``.
``keras_impl.parity.harness`` is the one template every parity test is built from;
``keras_impl.parity.tolerances`` holds every tolerance.
"""

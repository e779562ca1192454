"""bilstm-lab's parity suites: the oracle against itself and against Keras on every backend.

Run once per backend, one backend per process: ``KERAS_BACKEND=jax pytest``.
``parity_tests.harness`` is the one template every parity test is built from;
``parity_tests.tolerances`` holds every tolerance.
"""

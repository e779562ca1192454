"""Training-speed benchmarks of bilstm-lab (outside the importable core: nothing here is imported by it).

``python -m benchmarks.train_speed --help`` (or ``bilstm bench``) runs the sweep;
``python -m benchmarks.summary DIR`` redraws the figures and the summary of a results folder;
``bilstm bench --shard K/N`` runs a part of the grid and ``bilstm bench merge`` (``python -m benchmarks.merge``)
combines the parts, from one machine or many.
"""

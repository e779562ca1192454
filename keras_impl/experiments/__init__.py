"""The tutorial's experiments over many seeds: running them, their metrics, statistics, figures and report.

runner.py   seeds, data streams, initial weights, training (batched over seeds on JAX), resume
memory.py   the memory a run needs, estimated before it starts, against what the machine has
metrics.py  per-run numbers: mean loss, last-50 loss, updates to rolling accuracy 0.9, held-out accuracy
stats.py    paired differences with 95% confidence intervals, Wilcoxon signed-rank, Holm correction
plots.py    mean loss per update with a 95% band (PNG and SVG)
report.py   REPORT.md: the figures, the tables, each tutorial claim beside a verdict
console.py  what the commands print: a table that fits 100 columns, verdicts with intervals, files written
"""

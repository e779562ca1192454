"""Deployment parity: export a Keras recurrent model to another runtime, run it there, check it.

formats  the formats, their artifact names and the errors every part raises
exporters / worker   the export itself, in a process whose Keras backend is the route's (a Keras process)
runtimes / run_artifact   the artifact run in its real runtime, in a process without Keras
verify   both, compared with Keras and with the oracle; matrix: every backend x format x model
"""

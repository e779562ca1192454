"""A worker that dies with its parent: keras_impl/lifeline.py (moved there so that ``bilstm export`` shares it)."""
from keras_impl.lifeline import ORPHANED_EXIT, die_with_parent, parent_death_signal, watch_stdin

__all__ = ["ORPHANED_EXIT", "die_with_parent", "parent_death_signal", "watch_stdin"]

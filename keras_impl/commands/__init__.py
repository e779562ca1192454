"""Subcommands of ``bilstm``; each module lists ``COMMANDS = [(name, help, add_arguments, run), ...]``."""

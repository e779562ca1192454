"""Benchmark records grouped for reading: by group (implementation, framework, device, path) and shape.

Shared by the tables (``benchmarks.summary``) and the figures (``benchmarks.plots``), which import
this module and never each other's helpers.
"""
from __future__ import annotations


def group_of(r: dict) -> str:
    return r["key"].split("|")[0]


def shape_of(r: dict) -> tuple[int, int, int]:
    return r["batch"], r["timesteps"], r["units"]


def ok_by_group(records: list[dict]) -> dict[str, dict[tuple, dict]]:
    """{group: {(B, T, U): record}} for the cases that finished."""
    out: dict[str, dict[tuple, dict]] = {}
    for r in records:
        if r.get("status") == "ok":
            out.setdefault(group_of(r), {})[shape_of(r)] = r
    return out

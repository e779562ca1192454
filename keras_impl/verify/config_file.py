"""The model config stored in a model file, read as untrusted bytes: bounded before anything is decompressed or parsed.

A ``.keras`` file is a zip: its ``config.json`` is read only after the zip's own record of the member (its
declared size and its compression ratio) is checked, so that a 1 MB file whose config.json inflates to 1 GiB
of spaces (valid JSON) is refused without inflating it. A ``.h5`` file keeps the config in its
``model_config`` attribute, stored uncompressed (the file's size bounds it), and held to the same size. The JSON text is
then parsed with a bounded nesting depth (Python's reader raises RecursionError on 200,000 nested brackets).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .errors import VerifyRefusal

# The largest config.json accepted. A model config is a few kB per layer (the tutorial's: 6 kB; a
# 200-layer functional model: about 1 MB); 32 MiB leaves room for models far larger than the oracle runs
# while keeping the text and its parsed objects (about ten times the text) well under 1 GB.
MAX_CONFIG_BYTES = 32 * 2 ** 20
# The largest compression ratio accepted for any zip member read here. JSON configs compress 5 to 20 times;
# a run of one repeated byte, the shape of a zip bomb, about 1000 times (deflate's limit is 1032).
MAX_COMPRESSION_RATIO = 200
# Members smaller than this are read whatever their ratio: inflating them costs nothing worth refusing.
RATIO_CHECKED_ABOVE = 2 ** 20
# The deepest nesting of a config accepted. Keras's configs nest about 12 levels (a Bidirectional's layer's
# initializer's config; a functional node's tensor's history); the walks over a config recurse once per level.
MAX_CONFIG_DEPTH = 64


def _size(n: int) -> str:
    return f"{n / 2 ** 20:.2f} MiB" if n >= 2 ** 20 else f"{n} bytes"


def _check_ratio(path: Path, info: zipfile.ZipInfo) -> None:
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > MAX_COMPRESSION_RATIO and info.file_size > RATIO_CHECKED_ABOVE:
        raise VerifyRefusal(f"{path}: zip member {info.filename} declares {_size(info.file_size)} stored in "
                            f"{_size(info.compress_size)} (compression ratio {ratio:.0f}, more than "
                            f"{MAX_COMPRESSION_RATIO}): not read, the shape of a zip bomb")


def _zip_member(path: Path, name: str) -> bytes:
    """One member of the zip, after every member's compression ratio (Keras reads the others next) and this
    one's declared size are checked."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise VerifyRefusal(f"{path} is not a Keras 3 model file: it holds no {name}") from None
        _check_ratio(path, info)
        for other in archive.infolist():  # weights compress about 1.1 times: a member at 200 is no model's
            _check_ratio(path, other)
        if info.file_size > MAX_CONFIG_BYTES:
            raise VerifyRefusal(f"{path}: zip member {name} declares {_size(info.file_size)}, more than the "
                                f"{_size(MAX_CONFIG_BYTES)} a model config may take")
        with archive.open(info) as member:  # reads at most the declared size: zipfile stops there
            return member.read(MAX_CONFIG_BYTES + 1)


def _h5_attribute(path: Path) -> str:
    import h5py
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise VerifyRefusal(f"{path} holds no model config (a weights-only file?): save the whole model")
        raw = f.attrs["model_config"]  # HDF5 stores attributes uncompressed: the file's own size bounds it
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str):
        raise VerifyRefusal(f"{path}: its model_config attribute is a {type(raw).__name__}, not JSON text")
    if len(raw) > MAX_CONFIG_BYTES:
        raise VerifyRefusal(f"{path}: its model_config attribute takes {_size(len(raw))}, more than the "
                            f"{_size(MAX_CONFIG_BYTES)} a model config may take")
    return raw


def check_depth(value, limit: int = MAX_CONFIG_DEPTH) -> None:
    """Refuse a config nested deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise VerifyRefusal(f"the model config nests deeper than {limit} levels; Keras's configs take about 12")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def read_config_text(path: Path):
    """The model config stored in ``path``, parsed as JSON (any JSON value: its structure is checked later)."""
    path = Path(path)
    try:
        text = _zip_member(path, "config.json") if path.suffix == ".keras" else _h5_attribute(path)
        config = json.loads(text)
    except VerifyRefusal:
        raise
    except RecursionError:
        raise VerifyRefusal(f"cannot read a model config from {path}: its JSON nests deeper than "
                            f"{MAX_CONFIG_DEPTH} levels") from None
    except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError, EOFError) as exc:
        raise VerifyRefusal(f"cannot read a model config from {path}: {one_line(exc)}") from None
    check_depth(config)
    return config


def one_line(exc: BaseException) -> str:
    """An exception's whole message on one line (Keras's messages span several; none is cut off)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__

"""Checkpoints in the safetensors format: ``dlcore.save(obj, path)`` / ``dlcore.load(path)``.

``obj`` is a dict of name -> Tensor (a module's state_dict) or any nesting of dicts, lists
and tuples whose leaves are Tensors, NumPy arrays or plain values (int, float, bool, str,
None) - e.g. ``{"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}``.
Tensors are stored under dotted keys ("model.fc.weight", "optim.state.0.exp_avg"); the
plain values and the nesting go into the file's string metadata (JSON), so ``load`` gives
back the same structure. Any safetensors file loads as a flat dict of name -> Tensor.

Writes are atomic: the bytes go to a temp file in the target folder, which is flushed,
fsync'd and renamed over the target with os.replace; on any error the temp file is
removed and an existing file at `path` is untouched.
"""
import json
import os
import tempfile

import numpy as np

from dlcore.cuda.array import CudaArray
from dlcore.tensor import Tensor

_STRUCTURE_KEY = "__dlcore_structure__"
_FORMAT_KEY = "__dlcore_format__"
_FORMAT = "1"
_CHUNK = 1 << 22  # bytes per write() call


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("dlcore.save/load need the 'safetensors' package: pip install safetensors") from None
    return safetensors.numpy


def _encode(obj, key, tensors):
    """A JSON-able description of obj; Tensors/arrays go into `tensors` under dotted keys."""
    if isinstance(obj, (Tensor, np.ndarray, CudaArray)):
        arr = obj._data if isinstance(obj, Tensor) else obj
        if isinstance(arr, CudaArray):  # saved from the host copy; loads onto the CPU
            arr = arr.get()
        if key in tensors:
            raise ValueError(f"save: two entries flatten to the same key {key!r}")
        if not key:
            raise ValueError("save: the object to save must be a dict (or list) holding tensors, not a bare tensor")
        tensors[key] = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d as 0-d
        return {"t": key}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {k!r}")
            items.append([k, _encode(v, f"{key}.{k}" if key else str(k), tensors)])
        return {"d": items}
    if isinstance(obj, (list, tuple)):
        node = {"l": [_encode(v, f"{key}.{i}" if key else str(i), tensors) for i, v in enumerate(obj)]}
        if isinstance(obj, tuple):
            node["tuple"] = True
        return node
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"v": obj}
    if isinstance(obj, np.generic):
        return {"v": obj.item()}
    raise TypeError(f"save: cannot store a value of type {type(obj).__name__} at {key or 'the top level'!r}")


def _decode(node, tensors):
    if "t" in node:
        return tensors[node["t"]]
    if "d" in node:
        return {k: _decode(v, tensors) for k, v in node["d"]}
    if "l" in node:
        items = [_decode(v, tensors) for v in node["l"]]
        return tuple(items) if node.get("tuple") else items
    return node["v"]


def _write_chunks(f, data):
    """Writes `data` to file f in chunks (a separate function so tests can fail it midway)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (0666 - umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            _write_chunks(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not possible on every OS / file system
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def save(obj, path, metadata=None):
    """Writes obj (a dict of Tensors, or nested dicts/lists of Tensors and plain values) to
    `path` in the safetensors format, atomically. `metadata`: extra str -> str entries for
    the file header."""
    st = _safetensors_numpy()
    if not isinstance(obj, (dict, list, tuple)):
        raise TypeError(f"save: expected a dict of tensors (e.g. a state_dict), got {type(obj).__name__}")
    tensors = {}
    structure = _encode(obj, "", tensors)
    header = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save: metadata must map str to str, got {k!r}: {v!r}")
        if k.startswith("__dlcore"):
            raise ValueError(f"save: metadata key {k!r} is reserved")
        header[k] = v
    header[_FORMAT_KEY] = _FORMAT
    header[_STRUCTURE_KEY] = json.dumps(structure, separators=(",", ":"))
    data = st.save(tensors, metadata=header)
    _atomic_write(os.fspath(path), data)


def load(path):
    """Reads a file written by save (or any safetensors file). Returns what was saved, with
    every array as a Tensor; a file without dlcore's structure gives a flat dict of Tensors."""
    st = _safetensors_numpy()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        arrays = st.load(data)
    except Exception as e:  # safetensors raises its own SafetensorError for malformed files
        raise ValueError(f"load: {path} is not a valid safetensors file: {e}") from None
    tensors = {k: Tensor(a if a.flags.writeable else a.copy()) for k, a in arrays.items()}
    meta = load_metadata(path, _data=data)
    if _STRUCTURE_KEY in meta:
        return _decode(json.loads(meta[_STRUCTURE_KEY]), tensors)
    return tensors


def load_metadata(path, _data=None):
    """The str -> str metadata of a safetensors file's header (including dlcore's own keys)."""
    if _data is None:
        with open(os.fspath(path), "rb") as f:
            _data = f.read(8)
            n = int.from_bytes(_data, "little")
            head = f.read(n)
    else:
        n = int.from_bytes(_data[:8], "little")
        head = _data[8:8 + n]
    return json.loads(head).get("__metadata__") or {}

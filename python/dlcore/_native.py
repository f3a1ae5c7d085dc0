"""Loads the native extension ``dlcore._C``.

An installed dlcore imports ``_C`` from the package. For development, ``DLCORE_DEV_BUILD``
may name a CMake build folder holding a freshly built ``_C*.so``; it is loaded instead, so
``PYTHONPATH=python`` runs the source tree without reinstalling.
"""
import glob
import importlib.util
import os
import sys


def load():
    dev = os.environ.get("DLCORE_DEV_BUILD")
    if dev:
        found = glob.glob(os.path.join(dev, "_C*.so"))
        if not found:
            raise ImportError(f"DLCORE_DEV_BUILD={dev!r} holds no _C*.so: build it with ninja -C {dev}")
        spec = importlib.util.spec_from_file_location("dlcore._C", found[0])
        module = importlib.util.module_from_spec(spec)
        sys.modules["dlcore._C"] = module
        spec.loader.exec_module(module)
        return module
    from dlcore import _C

    return _C

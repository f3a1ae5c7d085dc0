from dlcore import _native
_C = _native.load()

"""The host cache: where the CPU kernels' large output arrays get their memory.

Arrays of 64 KiB and more that dlcore's kernels return take their memory from a cache of freed
blocks instead of fresh pages from the system (see csrc/core/host_cache.h: a training step
that re-creates its activations every iteration otherwise spends much of its time in page
faults). Freed blocks stay cached, up to 1 GiB by default (the DLCORE_HOST_CACHE_MB environment
variable, read at import, sets the limit; 0 turns caching off).
"""
from dlcore import _C


def empty_cache():
    """Returns every cached (free) block to the system; returns the bytes freed. Arrays in use
    are untouched."""
    return _C.host_cache_release()


def memory_stats():
    """{'cached_bytes', 'in_use_bytes', 'limit_bytes', 'hits', 'misses'}: bytes in the free
    lists, bytes held by live arrays, the cache limit, and allocations served from the cache /
    from the system."""
    return dict(_C.host_cache_stats())

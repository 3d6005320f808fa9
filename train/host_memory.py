"""Keep freed host memory for reuse: removes XLA:CPU's per-call page faults (glibc only).

Each call of a compiled XLA:CPU function allocates its temporaries with `malloc`: for a
training step these are the stored activations and gradient buffers, about 100 MB for one LSTM
layer at B=64, T=128, H=256. glibc serves blocks that large with fresh `mmap`ed pages and
unmaps them on `free`, so every call touches new memory and takes one page fault per 4 KiB
page: about 25,000 faults per call there, a quarter of the step's time (measured in
experiments/studies/cpu_speed/PERF_NOTES.md, section 14).

`reuse_freed_memory()` tells glibc's malloc to serve every block from the heap of one arena
and to keep freed memory instead of returning it to the operating system:

    mallopt(M_MMAP_MAX, 0)                  no mmap'ed blocks
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)    do not give freed heap memory back
    mallopt(M_ARENA_MAX, 1)                 threads share the main arena (else each
                                            thread's arena is itself mmap'ed and shrunk)

so a step reuses the pages that earlier steps freed and takes no faults. The heap needs a few
calls to get there: the worker threads do not allocate in the same order every call, so a call
now and then finds no free hole of the right size and grows the heap by one step's temporaries
(a full call's worth of faults). Measured at the shape above: one or two such calls among the
first ten, the heap settling near twice a step's temporaries, then none. The cost: the process
keeps its peak memory (resident size no longer shrinks after a large step).
The arena setting only reaches threads that have not allocated yet, so this must run before
the first JAX computation; the same settings from the shell, for any process:

    MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 python ...

`train.main` and `experiments.studies.cpu_speed.bench` call it at start-up
(`--reuse_host_memory`, default on).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_KEEP_BYTES = 2**31 - 1  # the largest value mallopt's int argument takes
_SETTINGS = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_BYTES), (_M_ARENA_MAX, 1))


def _jax_started() -> bool:
    """True once JAX has created its backends (and with them its worker threads)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge  # no public equivalent in jax 0.10

    return xla_bridge.backends_are_initialized()


def reuse_freed_memory() -> bool:
    """Applies the malloc settings above; returns True if they were applied.

    False (and nothing changed) when the C library is not glibc, or when JAX has already
    started: its threads would keep their own arenas, so the settings would only half apply.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or _jax_started():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    results = [libc.mallopt(param, value) for param, value in _SETTINGS]  # 1 = accepted
    return all(r == 1 for r in results)

"""Keep freed memory in the process for reuse (glibc malloc tuning for the vision workers), and share
what a worker's parent loads with the processes it forks (`loading_to_share_after_fork`).

SIFT on a phone photo builds a scale-space pyramid of ~100 MB and frees it again. By default
glibc returns large blocks to the kernel on free (they are mmapped, or the heap top is trimmed),
so the next photo faults in and zeroes fresh pages: on the 2-core benchmark machine that doubled
the extraction time (p50 ~300 ms instead of ~130 ms, bench/ad_recognition.py). `retain_freed_memory`
serves such blocks from the heap and keeps the heap's top, so a worker process reuses its pages;
its resident size stays at its high-water mark instead (a few hundred MB for a vision worker).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from contextlib import contextmanager
from typing import Iterator

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum: blocks below it come from the heap
TRIM_THRESHOLD = 1024 * 1024 * 1024  # free heap top kept before it is given back
TOP_PAD = 64 * 1024 * 1024  # extra heap requested at a time


def retain_freed_memory() -> bool:
    """Apply the tuning to this process (and processes it forks later); False where the C library
    is not glibc (nothing changes there)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))


@contextmanager
def loading_to_share_after_fork() -> Iterator[int]:
    """Around loading what a process's forked children will share (a worker's parent before its pool
    forks): FAISS runs on one OpenMP thread meanwhile, as GNU OpenMP's thread pool does not survive a
    fork (a child whose parent had started one hangs in its first parallel search); on leaving, the
    garbage collector is frozen, so the children's collectors leave the loaded objects, and their
    pages, alone. Yields FAISS's thread count, for `after_fork` in the children."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield threads
    gc.freeze()


def after_fork(threads: int) -> None:
    """In a forked child: FAISS's OpenMP threads as they were before `loading_to_share_after_fork`."""
    import faiss

    faiss.omp_set_num_threads(threads)

"""How many threads one process gives OpenCV (SIFT, warps) and FAISS (the descriptor index's searches).

Both default to one thread per core in every process. A vision worker runs a process per core, so
under load each scan's SIFT and index search would then compete with the other processes' threads
for the same cores: on the 2-core benchmark machine two processes with two threads each scanned
ads 9 % slower, at an 11 % higher p95, than with one thread each (bench/ad_recognition.py, process
layouts). torch's threads are set where the model is loaded (vision.registry.load_embedder).
"""

from __future__ import annotations


def use_threads(threads: int) -> None:
    """`threads` for OpenCV and for FAISS's OpenMP in this process (at least one)."""
    import cv2
    import faiss

    threads = max(1, int(threads))
    cv2.setNumThreads(threads)
    faiss.omp_set_num_threads(threads)


def threads_in_use() -> dict[str, int]:
    """What OpenCV and FAISS would use now, for a worker's log."""
    import cv2
    import faiss

    return {"opencv_threads": cv2.getNumThreads(), "faiss_threads": faiss.omp_get_max_threads()}

"""vision.threads: a worker process's OpenCV and FAISS thread counts."""

import cv2
import faiss
import pytest

from vision.threads import threads_in_use, use_threads


@pytest.fixture
def restored_threads():
    before = (cv2.getNumThreads(), faiss.omp_get_max_threads())
    yield
    cv2.setNumThreads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.mark.parametrize("threads", [1, 2])
def test_use_threads_sets_opencv_and_faiss(restored_threads, threads):
    use_threads(threads)
    assert threads_in_use() == {"opencv_threads": threads, "faiss_threads": threads}


def test_use_threads_never_asks_for_none(restored_threads):
    use_threads(0)  # OpenCV would read 0 as "run sequentially", FAISS would refuse it: one thread either way
    assert threads_in_use() == {"opencv_threads": 1, "faiss_threads": 1}

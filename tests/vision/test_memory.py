"""vision.memory: a worker process reuses the memory a photo's feature pyramid freed."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# ten 12 MB layers, about one SIFT octave of a 768x1024 photo, allocated and freed per "photo"
PROGRAM = """
import resource, sys
import numpy as np
from vision.memory import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def photo():
    layers = [np.ones(12 * 2**20, np.uint8) for _ in range(10)]
    del layers
photo(); photo()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    photo()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    return int(done.stdout.strip())


def test_freed_buffers_are_reused_without_faulting_in_fresh_pages():
    pages_per_photo = 10 * 12 * 2**20 // 4096
    # glibc's default gives the freed layers back to the kernel: the next photos fault pages in again
    assert page_faults("default") > pages_per_photo // 2
    # retained, five more photos run in the pages of the first two
    assert page_faults("retain") < 0.05 * pages_per_photo

"""Test configuration.

Triton decides between compiling and interpreting when a kernel is
*decorated*, so ``TRITON_INTERPRET=1`` must be set before any postlib kernel
module is imported: this file runs first. On a CUDA machine the real
kernels are tested instead.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    import torch
    _has_cuda = torch.cuda.is_available()
except Exception:  # pragma: no cover
    _has_cuda = False
if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# make test runs two xdist workers on two cores: one torch thread each avoids
# oversubscription, which turns thousands of tiny ops into thread hand-offs.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# Awkward lengths on purpose (fla does the same): 1, a prime, a non-power-of-two.
AWKWARD_LENGTHS = (1, 7, 13, 63, 100)


def pytest_sessionfinish(session, exitstatus):
    # The browser tests share one Playwright driver per process (tests/browser.py); stop it last.
    from tests.browser import stop_playwright
    stop_playwright()

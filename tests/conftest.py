"""`make test` runs the suite in two pytest-xdist workers (one per core of CI's machine): each computes on one
thread, so the two do not oversubscribe the cores. Processes the tests start keep torch's default."""
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

"""`make test` runs the suite in pytest-xdist workers, one per logical CPU: each computes on one thread, so the
workers do not oversubscribe the cores. Processes the tests start keep torch's default."""
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

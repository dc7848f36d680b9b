"""How automod's CPU threads wait for each other. PyTorch's CPU kernels run on OpenMP (GNU libgomp in the pip
wheels): a thread that finishes its share of an operation first spins, by default 300,000 times, before it sleeps,
so that the next operation starts without a wake-up. On an idle machine that is fast; beside another busy process
it is not: the spinning thread holds a core that its partner needs to finish, and training on 2 cores beside one
busy process ran 5-10x slower instead of about 2x (issue 23). A shorter spin lets a waiting thread give up its core
soon; `benchmarks/busy.py` measures both cases (benchmarks/RESULTS.md).

libgomp reads its settings once, when torch is loaded, so `configure_waiting` runs in the console script before
any import of torch (entry.py). It imports nothing and leaves alone a machine whose user set either variable."""

from __future__ import annotations

import os
from typing import Mapping, MutableMapping

SPIN_COUNT = 10_000  # GOMP_SPINCOUNT: spins before a waiting thread sleeps (libgomp's default: 300,000)
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def wait_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables automod sets in `environ`: none when the user chose a wait policy or spin count already."""
    if any(name in environ for name in WAIT_VARIABLES):
        return {}
    return {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


def configure_waiting(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set the wait variables in `environ` (the process's own by default) before torch is imported."""
    environ.update(wait_environment(environ))

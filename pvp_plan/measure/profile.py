"""Reading a 1-D profile sampled along a line (a column through a body, a needle path)."""

from __future__ import annotations

import numpy as np


def longest_run(flags: np.ndarray) -> int:
    """Number of samples in the longest run of consecutive true values of ``flags`` (1-D); 0 when none is true."""
    inside = np.concatenate([[0], np.asarray(flags, dtype=bool).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(inside))
    if edges.size == 0:
        return 0
    return int((edges[1::2] - edges[::2]).max())


def extent(flags: np.ndarray) -> int:
    """Number of samples from the first to the last true value of ``flags`` (1-D), gaps included; 0 when none is
    true."""
    idx = np.flatnonzero(np.asarray(flags, dtype=bool))
    return int(idx[-1] - idx[0] + 1) if idx.size else 0

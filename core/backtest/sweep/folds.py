"""Walk-forward folds in time order: fold k picks parameters on block k and is judged on block k+1.

The decision period (after the warm-up) is cut into K+1 contiguous blocks of bars. Fold k's in-sample
part is block k, its out-of-sample part block k+1 (rolling, equal lengths, so every fold's choice is
made on the same amount of data). Bars are half-open index ranges [lo, hi): a task backtests
`candles[:hi]` with decisions from bar lo on, so it cannot read a later bar at all; trades still open
at its end are closed at bar hi-1, inside its own part. Hence no out-of-sample bar is ever part of the
in-sample run that chose the parameters (tests/test_sweep.py checks it on the split and on the trades).
Bars before lo are read as history (indicator warm-up), as the live bot reads its past.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from core.domain.exceptions import UserFacingError

MIN_BLOCK_BARS = 50


class Fold(BaseModel):
    index: int
    is_lo: int
    is_hi: int
    oos_lo: int
    oos_hi: int

    def bars(self, phase: str) -> tuple[int, int]:
        return (self.is_lo, self.is_hi) if phase == "is" else (self.oos_lo, self.oos_hi)


def walk_forward(n_bars: int, first: int, k: int) -> list[Fold]:
    """K folds over bars [first, n_bars). Raises UserFacingError if a block would be too short to mean anything."""
    if k < 1:
        raise UserFacingError(f"--folds must be at least 1 (got {k})")
    span = n_bars - first
    if span < (k + 1) * MIN_BLOCK_BARS:
        raise UserFacingError(f"{span} bars after the warm-up are too few for {k} folds: each of the {k + 1} "
                              f"blocks needs at least {MIN_BLOCK_BARS} bars (use fewer folds or more data)")
    edges = np.linspace(first, n_bars, k + 2).round().astype(int).tolist()
    return [Fold(index=i, is_lo=edges[i], is_hi=edges[i + 1], oos_lo=edges[i + 1], oos_hi=edges[i + 2])
            for i in range(k)]

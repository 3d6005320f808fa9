"""When the flax modules (cells.linen, cells.nnx) must draw a dropout rng in training.

A `cells.Stack` takes one `rng` for all its randomness: the dropout between layers and the
`cells.scan` options recurrent_dropout and zoneout (each layer gets its own key). Without an
rng all three run their evaluation form (identity, identity, the zoneout expectation), so a
module that drew a key only for the between-layer dropout silently trained without the others.

    draws_rng(0.0, {"zoneout": (0.0, 0.1)})     # True: the module must draw one
    draws_rng(0.0, {"unroll": 2})               # False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def draws_rng(dropout: float, scan_kwargs: Mapping[str, Any]) -> bool:
    """True when any of the between-layer `dropout`, scan_kwargs' recurrent_dropout or zoneout
    (p, or (p_h, p_c)) is positive: training then needs a key."""
    zoneout = scan_kwargs.get("zoneout", 0.0)
    rates = zoneout if isinstance(zoneout, tuple | list) else (zoneout,)
    return dropout > 0.0 or scan_kwargs.get("recurrent_dropout", 0.0) > 0.0 or max(rates) > 0.0

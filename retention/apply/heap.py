"""Setting the heap that exists before a step aside from the garbage collector for the step."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Everything alive on entry is left out of the collector's passes until the block ends.

    The plan and everything made before the apply step are millions of objects that the collector's full
    passes would walk again and again while batches allocate (in a million-row apply, collection fell from
    0.29 s to 0.07 s). Objects made inside the block are collected as usual; on exit the set-aside ones
    rejoin the oldest generation. Blocks do not nest: the inner one's end would end the outer one's freeze.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()

"""Skip `datasets`' fingerprint hashing while in-memory inputs are tokenized for prediction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.RLock()  # re-entrant: a prediction may nest another


@contextmanager
def random_fingerprints() -> Iterator[None]:
    """Skip `datasets`' fingerprint hashing while a request's inputs are tokenized.

    Every `Dataset.map` hashes its function to name its cache, and a task's tokenize function
    holds the tokenizer: dill-pickling a 30k-word vocabulary costs 0.2-2 s per call, more than the
    forward pass. The server's datasets live in memory and are never cached, so a random
    fingerprint (what `datasets` itself falls back to when hashing fails) loses nothing.
    Hand-written: `datasets` has no switch for this (`disable_caching` still hashes). The swap is
    process-wide, so it is held under a lock; another thread's `map` meanwhile only loses cache
    reuse, never correctness.
    """
    import datasets.arrow_dataset as arrow
    import datasets.fingerprint as fp

    def random(fingerprint: Any, transform: Any, transform_args: Any) -> str:
        return fp.generate_random_fingerprint()

    with _lock:
        saved = fp.update_fingerprint, arrow.update_fingerprint
        fp.update_fingerprint = arrow.update_fingerprint = random
        try:
            yield
        finally:
            fp.update_fingerprint, arrow.update_fingerprint = saved

"""The one retry loop with a doubling backoff: a day's source retries and a lost database's reconnects.

Each caller decides, in its `wait`, whether an error is worth another attempt (and notes or
logs it); the loop and the delays are the same for both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def doubling(first: float, retry: int, cap: float = math.inf) -> float:
    """The delay before retry `retry` (1, 2, 3 ...): `first`, twice that, four times ..., at most `cap`."""
    return min(first * 2.0 ** (retry - 1), cap)


def retrying(
    call: Callable[[int], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    wait: Callable[[BaseException, int], float],
    failed_with: BaseException | None = None,
) -> T:
    """Call `call(attempt)` (attempt 1, 2, ...) until it returns, and return what it returns.

    After an error of `retry_on`, `wait(error, attempts so far)` gives the seconds to sleep
    before the next attempt, or raises to give up. `failed_with`: the first try was made
    already and failed with this error, so the loop starts by waiting.
    """
    attempts = 0
    error = failed_with
    while True:
        if error is not None:
            time.sleep(wait(error, attempts))
        attempts += 1
        try:
            return call(attempts)
        except retry_on as failed:
            error = failed

"""The one retry loop with a doubling backoff (source retries, database reconnects)."""

from __future__ import annotations

import pytest

from batchsync.backoff import doubling, retrying


class Flaky(Exception):
    pass


def test_delays_double_from_the_first_up_to_the_cap() -> None:
    assert [doubling(1.0, retry) for retry in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [doubling(0.5, retry, cap=3.0) for retry in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_retries_until_the_call_returns_waiting_as_told_between_attempts() -> None:
    waits: list[tuple[str, int]] = []

    def call(attempt: int) -> str:
        if attempt < 3:
            raise Flaky(f"attempt {attempt}")
        return f"done at {attempt}"

    def wait(error: BaseException, attempts: int) -> float:
        waits.append((str(error), attempts))
        return 0.0

    assert retrying(call, retry_on=(Flaky,), wait=wait) == "done at 3"
    assert waits == [("attempt 1", 1), ("attempt 2", 2)]


def test_wait_gives_up_by_raising_and_other_errors_are_not_retried() -> None:
    def give_up_after_two(error: BaseException, attempts: int) -> float:
        if attempts >= 2:
            raise error
        return 0.0

    calls: list[int] = []

    def always_flaky(attempt: int) -> None:
        calls.append(attempt)
        raise Flaky(f"attempt {attempt}")

    with pytest.raises(Flaky, match="attempt 2"):
        retrying(always_flaky, retry_on=(Flaky,), wait=give_up_after_two)
    assert calls == [1, 2]

    def broken(attempt: int) -> None:
        raise KeyError(attempt)

    with pytest.raises(KeyError):
        retrying(broken, retry_on=(Flaky,), wait=give_up_after_two)


def test_a_call_that_failed_already_starts_with_a_wait() -> None:
    waits: list[int] = []

    def wait(error: BaseException, attempts: int) -> float:
        waits.append(attempts)
        return 0.0

    assert retrying(lambda attempt: attempt, retry_on=(Flaky,), wait=wait, failed_with=Flaky("lost")) == 1
    assert waits == [0]

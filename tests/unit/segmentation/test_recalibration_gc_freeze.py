"""The recalibration's garbage-collector freeze is counted: overlapping recalibrations in one process keep
the objects frozen until the last of them finishes, and an error still unfreezes."""

from __future__ import annotations

import asyncio
import gc

import pytest

from segmentation.application.recalibration import long_lived_objects_frozen

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def nothing_frozen_around():
    assert gc.get_freeze_count() == 0, "objects were frozen before the test"
    yield
    assert gc.get_freeze_count() == 0, "a test left objects frozen"


def test_objects_are_frozen_inside_and_handed_back_after() -> None:
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_the_first_of_two_overlapping_holders_to_leave_does_not_unfreeze_the_other() -> None:
    first = long_lived_objects_frozen()
    second = long_lived_objects_frozen()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_freeze_count() > 0, "unfrozen while the second holder still runs"
    second.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0


def test_a_later_holder_gets_the_objects_created_since_the_first_froze_frozen_too() -> None:
    with long_lived_objects_frozen():
        before = gc.get_freeze_count()
        created_since = [[n] for n in range(1000)]
        with long_lived_objects_frozen():
            assert gc.get_freeze_count() >= before + len(created_since)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_an_error_inside_still_unfreezes() -> None:
    with pytest.raises(RuntimeError, match="re-grade failed"), long_lived_objects_frozen():
        raise RuntimeError("re-grade failed")
    assert gc.get_freeze_count() == 0


async def test_two_recalibration_tasks_interleaving_on_one_loop_stay_frozen_until_both_are_done() -> None:
    first_entered, second_entered, first_left = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen_after_first_left: list[int] = []

    async def first() -> None:
        with long_lived_objects_frozen():
            first_entered.set()
            await second_entered.wait()
        first_left.set()

    async def second() -> None:
        await first_entered.wait()
        with long_lived_objects_frozen():
            second_entered.set()
            await first_left.wait()
            seen_after_first_left.append(gc.get_freeze_count())

    await asyncio.gather(first(), second())

    assert seen_after_first_left and seen_after_first_left[0] > 0
    assert gc.get_freeze_count() == 0

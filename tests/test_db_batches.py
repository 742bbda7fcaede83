import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from omnihub.db_batches import Batched

# Runs happen on the database threads, which hold connections to the test database.
pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A batch function that records each run's items and can hold a run until released."""

    def __init__(self, *, hold_first: bool = False) -> None:
        self.runs: list[list[int]] = []
        self.first_running = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.runs.append(list(items))
        if len(self.runs) == 1:
            self.first_running.set()
            assert self.release.wait(timeout=30)
        return [LookupError(f"no {item}") if item < 0 else item * 10 for item in items]


async def _calls_queued_behind_a_held_run(
    batched: Batched[int, int], recorder: Recorder, first: int, queued: list[int]
) -> list[object]:
    held = asyncio.create_task(batched(first))
    await asyncio.to_thread(recorder.first_running.wait, 30)
    behind = [asyncio.create_task(batched(item)) for item in queued]
    await asyncio.sleep(0)  # each has handed its item over
    recorder.release.set()
    return await asyncio.gather(held, *behind, return_exceptions=True)


def test_a_lone_call_runs_at_once_with_its_item_alone():
    recorder = Recorder()

    result = async_to_sync(Batched(recorder))(4)

    assert result == 40
    assert recorder.runs == [[4]]


def test_calls_made_while_a_run_is_under_way_run_together_in_the_next():
    recorder = Recorder(hold_first=True)
    batched = Batched(recorder)

    results = async_to_sync(_calls_queued_behind_a_held_run)(batched, recorder, 1, [2, 3, 4])

    assert results == [10, 20, 30, 40]
    assert recorder.runs == [[1], [2, 3, 4]]


def test_a_run_takes_at_most_max_items():
    recorder = Recorder(hold_first=True)
    batched = Batched(recorder, max_items=2)

    results = async_to_sync(_calls_queued_behind_a_held_run)(batched, recorder, 1, [2, 3, 4])

    assert results == [10, 20, 30, 40]
    assert recorder.runs == [[1], [2, 3], [4]]


def test_an_item_s_error_goes_to_its_caller_alone():
    recorder = Recorder(hold_first=True)
    batched = Batched(recorder)

    held, failed, fine = async_to_sync(_calls_queued_behind_a_held_run)(
        batched, recorder, 1, [-2, 3]
    )

    assert (held, fine) == (10, 30)
    assert isinstance(failed, LookupError)
    assert str(failed) == "no -2"


def test_a_run_that_raises_fails_every_call_it_took():
    def explode(items: list[int]) -> list[int]:
        raise ConnectionError("the database went away")

    async def two_calls() -> list[object]:
        batched = Batched(explode)
        return list(await asyncio.gather(batched(1), batched(2), return_exceptions=True))

    results = async_to_sync(two_calls)()

    assert [type(result) for result in results] == [ConnectionError, ConnectionError]


def test_a_run_with_the_wrong_number_of_outcomes_fails_its_calls():
    def one_short(items: list[int]) -> list[int]:
        return items[1:]

    async def two_calls() -> list[object]:
        batched = Batched(one_short)
        return list(await asyncio.gather(batched(1), batched(2), return_exceptions=True))

    results = async_to_sync(two_calls)()

    assert all(isinstance(result, RuntimeError) for result in results)
    assert "gave 0 outcomes for 1 items" in str(results[0])


def test_a_caller_that_stops_waiting_before_its_run_is_left_out_of_it():
    recorder = Recorder(hold_first=True)
    batched = Batched(recorder)

    async def scenario() -> tuple[bool, list[int]]:
        held = asyncio.create_task(batched(1))
        await asyncio.to_thread(recorder.first_running.wait, 30)
        leaving = asyncio.create_task(batched(2))
        staying = asyncio.create_task(batched(3))
        await asyncio.sleep(0)
        leaving.cancel()
        recorder.release.set()
        results = await asyncio.gather(held, staying)
        return leaving.cancelled(), list(results)

    left, results = async_to_sync(scenario)()

    assert left
    assert results == [10, 30]
    assert recorder.runs == [[1], [3]]


def test_with_a_pause_a_call_after_a_quiet_spell_runs_at_once_and_later_ones_wait_for_it():
    recorder = Recorder()
    batched = Batched(recorder, pause=3600)

    async def scenario() -> tuple[int, list[list[int]]]:
        first = await batched(1)  # nothing ran before: at once
        later = [asyncio.create_task(batched(item)) for item in (2, 3)]
        for _ in range(10):
            await asyncio.sleep(0)
        runs_meanwhile = [list(run) for run in recorder.runs]
        for task in later:
            task.cancel()
        return first, runs_meanwhile

    first, runs_meanwhile = async_to_sync(scenario)()

    assert first == 10
    assert runs_meanwhile == [[1]]  # 2 and 3 wait for the pause to end, together


def test_an_item_that_fails_its_run_fails_alone_and_the_others_are_run_again_without_it():
    class AllOrNothing(Recorder):
        def __call__(self, items: list[int]) -> list[int | BaseException]:
            outcomes = super().__call__(items)
            if any(isinstance(outcome, LookupError) for outcome in outcomes):
                raise LookupError(f"the run of {items} was undone")
            return outcomes

    recorder = AllOrNothing(hold_first=True)
    batched = Batched(recorder)

    held, *behind = async_to_sync(_calls_queued_behind_a_held_run)(batched, recorder, 1, [2, -3, 4])

    assert held == 10
    assert (behind[0], behind[2]) == (20, 40)
    assert isinstance(behind[1], LookupError)
    assert str(behind[1]) == "the run of [-3] was undone"
    assert recorder.runs[:2] == [[1], [2, -3, 4]]
    assert sorted(recorder.runs[2:]) == [[-3], [2], [4]]


def test_a_failed_run_s_items_are_run_again_one_by_one_in_order_before_the_next_run():
    runs: list[list[int]] = []
    failing_run_started, release_it = threading.Event(), threading.Event()

    def all_or_nothing(items: list[int]) -> list[int | BaseException]:
        runs.append(list(items))
        if -3 in items and len(items) > 1:
            failing_run_started.set()
            assert release_it.wait(timeout=30)
            raise LookupError(f"the run of {items} was undone")
        return [LookupError("no -3") if item < 0 else item * 10 for item in items]

    async def scenario() -> list[object]:
        batched = Batched(all_or_nothing)
        first = [asyncio.create_task(batched(item)) for item in (2, -3, 4)]  # runs [2], [-3, 4]
        await asyncio.to_thread(failing_run_started.wait, 30)
        later = asyncio.create_task(batched(5))  # e.g. the same chat's next message
        await asyncio.sleep(0)
        release_it.set()
        return await asyncio.gather(*first, later, return_exceptions=True)

    results = async_to_sync(scenario)()

    assert (results[0], results[2], results[3]) == (20, 40, 50)
    assert isinstance(results[1], LookupError)
    assert runs == [[2], [-3, 4], [-3], [4], [5]]

"""Database work that many async callers hand over together: one run, on a database thread, for
the items of every call made while the previous run was under way.

A webhook or a conversation step costs a few ORM statements, and each statement costs far more
CPU to compile than to run; a run that stores twenty messages with one bulk statement pays for
one. Nobody waits for a batch to fill: a call made while nothing runs starts a run at once, with
its item alone, so an idle system answers as fast as without batching, and batches grow only as
calls arrive faster than runs end.
"""

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from omnihub.db_threads import run_in_db_thread

# What a run returns for one item: its result, or the error raised to that item's caller alone.
type Outcome[R] = R | BaseException


@dataclass(slots=True)
class _Waiting[T, R]:
    item: T
    future: "asyncio.Future[R]"


@dataclass(slots=True)
class _LoopState[T, R]:
    """What one event loop's callers wait on: futures belong to the loop they were made on."""

    waiting: list[_Waiting[T, R]] = field(default_factory=list)
    running: int = 0


class Batched[T, R]:
    """`function(items)` run on a database thread for the items of many callers at once.

    `function` returns one outcome per item, in order: a result, or an exception that only that
    item's caller gets. An exception it raises itself goes to every caller of that run. At most
    `runs` runs are under way at once (per event loop), each with at most `max_items` items.
    """

    def __init__(
        self,
        function: Callable[[list[T]], Sequence[Outcome[R]]],
        *,
        max_items: int = 100,
        runs: int = 1,
    ) -> None:
        self.function = function
        self.max_items = max_items
        self.runs = runs
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        waiting = _Waiting[T, R](item, loop.create_future())
        state.waiting.append(waiting)
        if state.running < self.runs:
            self._start(loop, state)
        return await waiting.future

    def _start(self, loop: asyncio.AbstractEventLoop, state: _LoopState[T, R]) -> None:
        taken = state.waiting[: self.max_items]
        del state.waiting[: self.max_items]
        state.running += 1
        run = loop.create_task(run_in_db_thread(self.function, [w.item for w in taken]))
        run.add_done_callback(lambda done: self._settle(loop, state, taken, done))

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        state: _LoopState[T, R],
        taken: list[_Waiting[T, R]],
        run: "asyncio.Task[Sequence[Outcome[R]]]",
    ) -> None:
        state.running -= 1
        if state.waiting:
            self._start(loop, state)
        if run.cancelled():
            outcomes: Sequence[Outcome[R]] = [asyncio.CancelledError()] * len(taken)
        elif (error := run.exception()) is not None:
            outcomes = [error] * len(taken)
        else:
            outcomes = run.result()
            if len(outcomes) != len(taken):
                mismatch = RuntimeError(
                    f"{self.function.__qualname__} gave {len(outcomes)} outcomes for "
                    f"{len(taken)} items"
                )
                outcomes = [mismatch] * len(taken)
        for waiting, outcome in zip(taken, outcomes, strict=True):
            if waiting.future.done():  # its caller stopped waiting
                continue
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)

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
    ended_at: float = float("-inf")  # when the last run ended, in the loop's time
    start: asyncio.TimerHandle | None = None  # a run due to start after its pause


class Batched[T, R]:
    """`function(items)` run on a database thread for the items of many callers at once.

    `function` returns one outcome per item, in order: a result, or an exception that only that
    item's caller gets. It must do all of its work or none (one transaction): when it raises,
    each of the run's items is run again by itself, and an item that raises alone gets its own
    error. At most `runs` runs are under way at once (per event loop), each with at most
    `max_items` items.

    With a `pause`, a run starts no sooner than that many seconds after the previous one ended:
    while calls keep coming, they gather for fewer, larger runs, at the cost of that much
    latency; a call after a quiet spell still starts a run at once.
    """

    def __init__(
        self,
        function: Callable[[list[T]], Sequence[Outcome[R]]],
        *,
        max_items: int = 100,
        runs: int = 1,
        pause: float = 0.0,
    ) -> None:
        self.function = function
        self.max_items = max_items
        self.runs = runs
        self.pause = pause
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
        self._start_when_due(loop, state)
        return await waiting.future

    def _start_when_due(self, loop: asyncio.AbstractEventLoop, state: _LoopState[T, R]) -> None:
        # A caller that stopped waiting before its run began is not run at all.
        state.waiting = [waiting for waiting in state.waiting if not waiting.future.done()]
        if not state.waiting or state.running >= self.runs or state.start is not None:
            return
        wait = state.ended_at + self.pause - loop.time()
        if wait > 0:
            state.start = loop.call_later(wait, self._start_paused, loop, state)
        else:
            self._start(loop, state)

    def _start_paused(self, loop: asyncio.AbstractEventLoop, state: _LoopState[T, R]) -> None:
        state.start = None
        self._start_when_due(loop, state)

    def _start(self, loop: asyncio.AbstractEventLoop, state: _LoopState[T, R]) -> None:
        taken = state.waiting[: self.max_items]
        del state.waiting[: self.max_items]
        state.running += 1

        def ended(_: "asyncio.Task[None]") -> None:
            state.running -= 1
            state.ended_at = loop.time()
            self._start_when_due(loop, state)

        loop.create_task(self._run(taken)).add_done_callback(ended)

    async def _run(self, taken: list[_Waiting[T, R]]) -> None:
        try:
            outcomes = await self._outcomes(taken)
            if isinstance(outcomes, BaseException) and len(taken) > 1:
                # One item may have failed the whole run: each is run again by itself, so that
                # an error is only its own caller's; one after another, in the order they came,
                # and before the next run, so that a chat's items keep their order.
                for waiting in taken:
                    self._settle([waiting], await self._outcomes([waiting]))
                return
            self._settle(taken, outcomes)
        except asyncio.CancelledError:
            for waiting in taken:
                waiting.future.cancel()  # no-op for those settled already
            raise

    async def _outcomes(self, taken: list[_Waiting[T, R]]) -> Sequence[Outcome[R]] | BaseException:
        """The run's outcome for each item, or the error the run raised."""
        try:
            outcomes = await run_in_db_thread(self.function, [w.item for w in taken])
        except Exception as error:
            return error
        if len(outcomes) != len(taken):
            return RuntimeError(
                f"{self.function!r} gave {len(outcomes)} outcomes for {len(taken)} items"
            )
        return outcomes

    @staticmethod
    def _settle(
        taken: list[_Waiting[T, R]], outcomes: Sequence[Outcome[R]] | BaseException
    ) -> None:
        if isinstance(outcomes, BaseException):
            outcomes = [outcomes] * len(taken)
        for waiting, outcome in zip(taken, outcomes, strict=True):
            if waiting.future.done():  # its caller stopped waiting
                continue
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)

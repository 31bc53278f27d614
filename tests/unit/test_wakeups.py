"""Who a notification wakes (server/scheduler/wakeups.py), without a database."""

from __future__ import annotations

from server.scheduler.wakeups import Wakeups
from server.store.wakeups import topic


async def test_a_wake_up_goes_to_an_idle_waiter_not_to_one_that_is_looking() -> None:
    """A waiter in the middle of its look must not use up a wake-up meant for the next process:
    it compares generations itself; the idle waiter behind it is the one to wake."""
    wakeups = Wakeups("postgresql://unused")
    with wakeups.waiter("c", "t") as looking, wakeups.waiter("c", "t") as idle:
        idle.idle = True
        wakeups.wake(topic("c", "t"))
        assert idle.event.is_set()
        assert not looking.event.is_set()
        assert wakeups.generation("c", "t") == 1


async def test_wake_ups_go_to_the_longest_waiting_idle_waiter_one_each() -> None:
    wakeups = Wakeups("postgresql://unused")
    with wakeups.waiter("c", "t") as first, wakeups.waiter("c", "t") as second:
        first.idle = second.idle = True
        wakeups.wake(topic("c", "t"))
        assert first.event.is_set() and not second.event.is_set()
        wakeups.wake(topic("c", "t"))
        assert second.event.is_set()


async def test_hand_off_skips_waiters_that_looked_after_the_giver() -> None:
    wakeups = Wakeups("postgresql://unused")
    with wakeups.waiter("c", "t") as giver, wakeups.waiter("c", "t") as later, \
            wakeups.waiter("c", "t") as earlier:
        giver.looked, later.looked, earlier.looked = 5, 6, 4
        later.idle = earlier.idle = True
        wakeups.hand_off("c", "t", giver)
        assert earlier.event.is_set() and not later.event.is_set()


async def test_wake_all_reaches_everyone_and_starts_a_new_generation() -> None:
    wakeups = Wakeups("postgresql://unused")
    with wakeups.waiter("c", "t") as looking, wakeups.waiter("c", "u") as idle:
        idle.idle = True
        wakeups.wake_all()
        assert looking.event.is_set() and idle.event.is_set()
        assert wakeups.generation("c", "t") == 1 and wakeups.generation("c", "u") == 1


async def test_waiting_counts_idle_waiters_and_hand_offs_are_counted() -> None:
    wakeups = Wakeups("postgresql://unused")
    assert wakeups.waiting("c", "t") == 0
    with wakeups.waiter("c", "t") as giver, wakeups.waiter("c", "t") as taker:
        assert wakeups.waiting("c", "t") == 0  # registered, still looking
        giver.looked, taker.looked = 5, 4
        taker.idle = True
        assert wakeups.waiting("c", "t") == 1 and wakeups.waiting("c", "u") == 0
        wakeups.hand_off("c", "t", giver)
        assert taker.event.is_set() and wakeups.handoffs == 1
        wakeups.hand_off("c", "t", giver)  # nobody left to take it: not counted
        assert wakeups.handoffs == 1
    assert wakeups.waiting("c", "t") == 0


async def test_a_colony_topic_wakes_every_waiter_of_that_colony_only() -> None:
    """A resume (the colony's topic, an empty executortype) wakes each waiter of each queue of the
    colony, looking or idle, and opens a new generation for each queue (so a look in progress looks
    again); other colonies are left alone."""
    wakeups = Wakeups("postgresql://unused")
    with wakeups.waiter("c", "t") as idle, wakeups.waiter("c", "t") as looking, \
            wakeups.waiter("c", "u") as other_type, wakeups.waiter("cc", "t") as other_colony:
        idle.idle = other_type.idle = other_colony.idle = True
        wakeups.wake(topic("c", ""))
        assert idle.event.is_set() and looking.event.is_set() and other_type.event.is_set()
        assert not other_colony.event.is_set()
        queues = (("c", "t"), ("c", "u"), ("cc", "t"))
        generations = [wakeups.generation(colony, kind) for colony, kind in queues]
        assert generations == [1, 1, 0]

"""Failed log-ins slow a client down more and more; others and successes are unaffected."""

from pipeline.backoff import Backoff
from pipeline.security.throttle import Throttle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_delays_grow_after_the_free_attempts_and_success_forgets():
    clock = Clock()
    throttle = Throttle("test", free=2, backoff=Backoff(base=1.0, factor=2.0, cap=8.0), clock=clock)
    delays = [throttle.failed("10.0.0.1") for _ in range(7)]
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert throttle.wait("10.0.0.1") == 8.0
    assert throttle.wait("10.0.0.2") == 0.0          # another client is not slowed
    clock.now += 5
    assert throttle.wait("10.0.0.1") == 3.0
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 0.0
    assert throttle.failed("10.0.0.1") == 0.0        # counting starts over

"""Token buckets and console caps, on a clock the test turns by hand."""
import pytest

from guacbridge.limits import ConsoleCaps, Limited, Rate, RateLimiter, Throttle, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("text, rate", [("30/minute", Rate(30, 60.0)), ("5/10s", Rate(5, 10.0)),
                                        ("100/h", Rate(100, 3600.0)), ("2/1.5", Rate(2, 1.5)),
                                        ("off", None), ("", None), (0, None)])
def test_rates_read_as_operators_write_them(text, rate):
    assert parse_rate(text) == rate


def test_a_burst_is_allowed_then_one_token_per_interval_comes_back():
    clock = Clock()
    bucket = RateLimiter(Rate(3, 30.0), clock)
    assert [bucket.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("k") == pytest.approx(10.0)     # one token per 10 s
    assert bucket.take("other") == 0.0                 # buckets are per key
    clock.now += 10.0
    assert bucket.take("k") == 0.0 and bucket.take("k") > 0


def test_full_buckets_are_forgotten_when_there_are_too_many():
    clock = Clock()
    bucket = RateLimiter(Rate(1, 1.0), clock, max_keys=2)
    bucket.take("a"), bucket.take("b")
    clock.now += 5
    bucket.take("c")
    assert set(bucket._buckets) == {"c"}


def test_a_throttle_says_who_and_when_to_retry():
    throttle = Throttle("console creations", Rate(1, 60.0), None, Clock())
    throttle.check_key("portal")
    throttle.check_address("10.0.0.1")                 # no address limit: never refused
    with pytest.raises(Limited) as e:
        throttle.check_key("portal")
    assert "API key portal" in e.value.details and e.value.retry_after_header == "60"


def test_caps_count_live_consoles_per_owner_and_target_until_they_end():
    clock = Clock()
    caps = ConsoleCaps(per_owner=2, per_target=1, clock=clock)
    caps.admit("1", "portal", "10.0.0.5:5900", clock.now + 100)
    with pytest.raises(Limited, match="10.0.0.5:5900 has 1 live consoles"):
        caps.admit("2", "portal", "10.0.0.5:5900", clock.now + 100)
    caps.admit("2", "portal", "10.0.0.6:5900", clock.now + 100)
    with pytest.raises(Limited, match="portal has 2 live consoles"):
        caps.admit("3", "portal", "10.0.0.7:5900", clock.now + 100)
    caps.on_event("closed", {"id": "1"})
    caps.admit("3", "portal", "10.0.0.5:5900", clock.now + 100)
    clock.now += 101                                   # a close never heard of
    caps.admit("4", "portal", "10.0.0.5:5900", clock.now + 100)

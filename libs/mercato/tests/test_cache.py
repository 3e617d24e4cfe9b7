"""``mercato.cache.TimedCache``: entries expire, the least recently used goes first when
full, a shorter lifetime per entry is honoured, and a TTL of 0 keeps nothing."""

from mercato.cache import TimedCache


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_its_ttl_and_not_a_moment_longer():
    ticker = Ticker()
    cache = TimedCache(10, timer=ticker)
    cache.put("a", 1)
    ticker.now += 9.9
    assert cache.get("a") == 1
    ticker.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_a_full_cache_drops_the_least_recently_used_entry():
    cache = TimedCache(10, max_entries=2, timer=Ticker())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the more recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_an_entry_that_must_go_sooner_goes_sooner():
    ticker = Ticker()
    cache = TimedCache(10, timer=ticker)
    cache.put("token", "alice", at_most_seconds=2)
    ticker.now += 2
    assert cache.get("token") is None
    cache.put("gone", "bob", at_most_seconds=0)  # already expired: never kept
    assert cache.get("gone") is None


def test_forget_drops_an_entry_at_once():
    cache = TimedCache(10, timer=Ticker())
    cache.put("a", 1)
    cache.forget("a")
    cache.forget("never there")
    assert cache.get("a") is None


def test_a_ttl_of_zero_keeps_nothing():
    cache = TimedCache(0, timer=Ticker())
    cache.put("a", 1)
    assert not cache.enabled
    assert cache.get("a") is None and len(cache) == 0

"""``max_logs_mb``: the oldest raw logs go first, as few as needed, room left for the next one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from unattended.safety.logcap import logs_to_prune


def test_under_the_cap_nothing_goes_and_no_size_is_read() -> None:
    def never():  # noqa: ANN202
        raise AssertionError("read a size it did not need")
        yield 0

    assert logs_to_prune(never(), total=100, cap=300, room=200) == 0


def test_the_oldest_go_until_the_rest_and_the_room_fit() -> None:
    assert logs_to_prune([50, 50, 50, 50], total=200, cap=250, room=100) == 1
    assert logs_to_prune([10, 500, 10], total=520, cap=300, room=100) == 2
    assert logs_to_prune([10, 10], total=20, cap=50, room=100) == 2  # room alone exceeds the cap


@given(
    st.lists(st.integers(0, 10**9), max_size=50),
    st.integers(1, 10**10),
    st.integers(0, 10**9),
)
def test_the_fewest_oldest_logs_that_make_it_fit(sizes: list[int], cap: int, room: int) -> None:
    total = sum(sizes)
    count = logs_to_prune(sizes, total, cap, room)
    kept = total - sum(sizes[:count])
    assert kept + room <= cap or count == len(sizes)
    if count:
        assert total - sum(sizes[: count - 1]) + room > cap  # one fewer would not fit

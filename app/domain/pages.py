"""One exact page of a list merged from two sorted sources: a large one read a window at a time
(SQL), and a small one known whole (the changes Redis has that SQL lacks yet)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows of the large source a page needs: `limit` rows from `offset`."""

    offset: int
    limit: int


def window(offset: int, limit: int, small: int) -> Window:
    """The rows of the large source that can land on the page [offset, offset + limit) once
    `small` other items are merged in: each of those moves a row at most one place later."""
    start = max(0, offset - small)
    return Window(start, offset + limit - start)


def merged_page(
    rows: Sequence[Item],
    at: Window,
    small: Sequence[Item],
    page: Window,
    key: Callable[[Item], Any],
) -> list[Item]:
    """Items `page` of the merged order (by `key`, which both sources share), given the large
    source's rows in the window `at` (fewer rows than asked: the large source ends there) and
    the whole small source."""
    extra = sorted(small, key=key)
    extra_keys = [key(item) for item in extra]
    row_keys = [key(row) for row in rows]
    placed = [
        (at.offset + i + bisect_left(extra_keys, row_key), row)
        for i, (row_key, row) in enumerate(zip(row_keys, rows, strict=True))
    ]
    ended = len(rows) < at.limit
    for rank, (item_key, item) in enumerate(zip(extra_keys, extra, strict=True)):
        before = bisect_left(row_keys, item_key)  # rows of the window ahead of this item
        if before == 0 and at.offset > 0:
            continue  # at most at.offset + rank < page.offset: ahead of the page
        if before == len(rows) and not ended:
            continue  # at least at.offset + at.limit >= the page's end: past it
        placed.append((at.offset + before + rank, item))
    placed.sort(key=lambda position: position[0])
    end = page.offset + page.limit
    return [item for position, item in placed if page.offset <= position < end]

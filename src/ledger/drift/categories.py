"""Counting a categorical column's values: exactly while few, approximately past that.

Exact counts are kept for up to ``MAX_EXACT_CATEGORIES`` distinct values (and
``MAX_EXACT_LABEL_BYTES`` of their text); past either, the counts move into a
DataSketches frequent-items sketch (the most frequent values, each count within
``3.5 / 2**FREQUENT_LG_MAX_K`` = 0.68 % of the total), a label over ``MAX_LABEL_CHARS``
shortened to its start and a digest of the whole. An HLL sketch estimates the number of
distinct values throughout.
"""

from __future__ import annotations

import hashlib
from typing import Any

import datasketches as ds

MAX_EXACT_CATEGORIES = 1_000
MAX_EXACT_LABEL_BYTES = 32 * 1024
FREQUENT_LG_MAX_K = 9
"""A frequent-items map of 512 slots: up to 384 tracked values."""
MAX_LABEL_CHARS = 64
HLL_LG_K = 12
"""4,096 HLL buckets: about 1.6 % relative standard error on the distinct count."""
OTHER = "\x00other"
"""The cell of the values a frequent-items sketch no longer names."""

_NO_FALSE_NEGATIVES = ds.frequent_items_error_type.NO_FALSE_NEGATIVES


class CategoryCounts:
    """Counts of a categorical column's values, mergeable and serializable."""

    def __init__(self) -> None:
        self.exact: dict[str, int] | None = {}
        self.frequent: Any = None  # datasketches.frequent_strings_sketch once past exact
        self.distinct_sketch: Any = ds.hll_sketch(HLL_LG_K)

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def add(self, counts: dict[str, int]) -> None:
        """Count each value ``counts`` names that many more times."""
        for value in counts:
            self.distinct_sketch.update(value)
        if self.exact is not None:
            for value, count in counts.items():
                self.exact[value] = self.exact.get(value, 0) + count
            if not _fits_exact(self.exact):
                self._to_frequent()
        else:
            _feed(self.frequent, counts)

    def merge(self, other: CategoryCounts) -> None:
        """Add ``other``'s counts to these."""
        union = ds.hll_union(HLL_LG_K)
        union.update(self.distinct_sketch)
        union.update(other.distinct_sketch)
        self.distinct_sketch = union.get_result(ds.tgt_hll_type.HLL_8)
        if other.exact is not None:
            if self.exact is not None:
                for value, count in other.exact.items():
                    self.exact[value] = self.exact.get(value, 0) + count
                if not _fits_exact(self.exact):
                    self._to_frequent()
            else:
                _feed(self.frequent, other.exact)
        else:
            if self.exact is not None:
                self._to_frequent()
            self.frequent.merge(other.frequent)

    def counts(self, total: int) -> dict[str, float]:
        """Each value's count: exact, or the sketch's estimates plus an ``OTHER`` cell for
        what it no longer names (``total``: how many values were counted)."""
        if self.exact is not None:
            return {value: float(count) for value, count in self.exact.items()}
        found = {
            item: float(estimate)
            for item, estimate, _lower, _upper in self.frequent.get_frequent_items(
                _NO_FALSE_NEGATIVES
            )
        }
        rest = total - sum(found.values())
        if rest > 0:
            found[OTHER] = found.get(OTHER, 0.0) + rest
        return found

    def distinct(self) -> float:
        """The number of distinct values: exact while counted exactly, else HLL's estimate."""
        if self.exact is not None:
            return float(len(self.exact))
        return float(self.distinct_sketch.get_estimate())

    def _to_frequent(self) -> None:
        self.frequent = ds.frequent_strings_sketch(FREQUENT_LG_MAX_K)
        _feed(self.frequent, self.exact or {})
        self.exact = None

    # -- serialization -----------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {"exact": self.exact}

    def blobs(self) -> list[bytes]:
        frequent = self.frequent.serialize() if self.frequent is not None else b""
        return [self.distinct_sketch.serialize_compact(), frequent]

    @classmethod
    def restore(cls, header: dict[str, Any], blobs: list[bytes]) -> CategoryCounts:
        counts = cls()
        counts.exact = header["exact"]
        counts.distinct_sketch = ds.hll_sketch.deserialize(blobs[0])
        if blobs[1]:
            counts.frequent = ds.frequent_strings_sketch.deserialize(blobs[1])
        return counts


def _fits_exact(counts: dict[str, int]) -> bool:
    if len(counts) > MAX_EXACT_CATEGORIES:
        return False
    return sum(len(value.encode()) for value in counts) <= MAX_EXACT_LABEL_BYTES


def _feed(frequent: Any, counts: dict[str, int]) -> None:
    for value, count in counts.items():
        frequent.update(short_label(value), count)


def short_label(value: str) -> str:
    """``value``, or past ``MAX_LABEL_CHARS`` its start and a digest (distinct stay apart)."""
    if len(value) <= MAX_LABEL_CHARS:
        return value
    digest = hashlib.blake2b(value.encode(errors="surrogatepass"), digest_size=8).hexdigest()
    return f"{value[: MAX_LABEL_CHARS - 17]}~{digest}"

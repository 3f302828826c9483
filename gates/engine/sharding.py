"""Shards of one gate run across a CI matrix, and the bookkeeping of merging them.

`readiness gate NAME --shard i/N` runs part i of N; each part's result
carries its own record under `evidence["shard_parts"]` ({"i": {...}}), so a
merge of some shards is itself mergeable and a re-run shard replaces its
earlier record. The mutation gate and suite_health (with coverage) share
this shape:

    >>> parse_shard("2/4")
    (2, 4)
    >>> collect_parts([{"shard_count": 2, "shard_parts": {"1": {"a": 1}}},
    ...                {"shard_count": 2, "shard_parts": {"2": {"a": 2}}}]).missing
    []

Parts of a different partition (another N) than the latest one are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from gates.engine.protocol import GateError


def parse_shard(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4); "" -> (1, 1). Raises GateError on anything else."""
    if not text:
        return 1, 1
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()) or not 1 <= int(index) <= int(count):
        raise GateError(f"setting shard: {text!r} is not i/N with 1 <= i <= N")
    return int(index), int(count)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """The shard records gathered from several results: index -> record."""

    count: int
    parts: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def missing(self) -> list[int]:
        return [i for i in range(1, self.count + 1) if i not in self.parts]

    def incomplete(self) -> dict[int, str]:
        """Shards that ran but did not finish, with the reason each gives."""
        return {i: str(p.get("problem") or "incomplete") for i, p in sorted(self.parts.items())
                if not p.get("complete")}

    def describe_gaps(self) -> str:
        """"shard 2 of 4 is incomplete: <why>; shards 3, 4 missing", or "" when none."""
        gaps = [f"shard {i} of {self.count} is incomplete: {why}" for i, why in self.incomplete().items()]
        if self.missing:
            noun = "shard" if len(self.missing) == 1 else "shards"
            gaps.append(f"{noun} {', '.join(map(str, self.missing))} of {self.count} missing")
        return "; ".join(gaps)


def collect_parts(records: Iterable[Mapping[str, Any]]) -> Parts:
    """Fold shard records in the order produced: `{"shard_count", "shard_parts"}` each."""
    count, parts = 0, dict[int, Any]()
    for record in records:
        n = int(record.get("shard_count", 1))
        if n != count:
            count, parts = n, {}
        for index, part in (record.get("shard_parts") or {}).items():
            parts[int(index)] = part
    if count == 0:
        raise GateError("no shard results to merge")
    return Parts(count=count, parts=parts)


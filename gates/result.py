"""Value types every gate returns: `Status`, `Severity` and `GateResult`.

Standard library only, so that `reports` can read results without importing
any gate implementation (or torch). A result serialises to the plain JSON
object stored in the assessment document and comes back from it unchanged:

    >>> r = GateResult(name="coverage", status=Status.PASS, severity=Severity.BLOCKER,
    ...                score=0.91, summary="line 91.0 %, branch 88.2 %")
    >>> GateResult.from_dict(r.to_dict()) == r
    True
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping


class Status(str, enum.Enum):
    """What a gate concluded. Only `pass` and `warn` are positive evidence."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"  # the gate could not do its work
    NOT_EVALUABLE = "not_evaluable"  # cannot run on this host
    SKIPPED = "skipped"  # a gate it needs did not pass
    OFF = "off"  # turned off by configuration or the command line: listed, outside the score

    @property
    def passed(self) -> bool:
        return self in (Status.PASS, Status.WARN)


class Severity(str, enum.Enum):
    """How much a gate matters: the checklist's must / should / nice to have."""

    BLOCKER = "blocker"
    WARNING = "warning"
    OPTIONAL = "optional"


# Documents of schema 1 and 2 wrote a gate turned off as `skipped` with this evidence flag.
LEGACY_OFF_FLAG = "configured_off"


def status_of(gate: Mapping[str, Any]) -> Status:
    """The status of a stored gate result; the schema 1-2 form of "turned off" reads as OFF.

    Raises ValueError for a status no schema knows.
    """
    status = Status(gate["status"])
    evidence = gate.get("evidence")
    if status is Status.SKIPPED and isinstance(evidence, Mapping) and evidence.get(LEGACY_OFF_FLAG) is True:
        return Status.OFF
    return status


def json_safe(value: Any) -> Any:
    """`value` as strict JSON types: tuples become lists, numpy scalars plain
    numbers, NaN/inf the strings "nan"/"inf"/"-inf", anything else its str().

    A result is stored, cached and hashed in this form, so a fresh result and
    the same result read back from the cache are equal.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return json_safe(item())
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """One gate's verdict with the numbers and evidence behind it.

    `score` is 0..1, or None when the gate measured nothing it could score
    (error, not_evaluable, skipped). `metrics` holds flat numbers the report
    and the regression rules read; `evidence` holds structured detail (files,
    per-shape rows, failures). `cached` says the result was reused.
    """

    name: str
    status: Status
    severity: Severity = Severity.BLOCKER
    score: float | None = None
    summary: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remediation: str = ""
    duration_s: float = 0.0
    cached: bool = False

    def __post_init__(self) -> None:
        if self.score is not None and not 0.0 <= self.score <= 1.0:
            raise ValueError(f"gate {self.name!r}: score {self.score} is outside 0..1")

    def normalised(self) -> GateResult:
        """This result as it reads back from JSON (see `json_safe`)."""
        return GateResult.from_dict(self.to_dict())

    def with_(self, **changes: Any) -> GateResult:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "severity": self.severity.value,
            "score": None if self.score is None else float(self.score),
            "summary": self.summary,
            "metrics": json_safe(self.metrics),
            "evidence": json_safe(self.evidence),
            "remediation": self.remediation,
            "duration_s": round(self.duration_s, 4),
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Rebuild a result; raises ValueError naming the bad field."""
        try:
            return cls(
                name=str(data["name"]),
                status=status_of(data),
                severity=Severity(data.get("severity", "blocker")),
                score=None if data.get("score") is None else float(data["score"]),
                summary=str(data.get("summary", "")),
                metrics=dict(data.get("metrics") or {}),
                evidence=dict(data.get("evidence") or {}),
                remediation=str(data.get("remediation", "")),
                duration_s=float(data.get("duration_s", 0.0)),
                cached=bool(data.get("cached", False)),
            )
        except KeyError as exc:
            raise ValueError(f"gate result is missing the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"gate result {data.get('name', '?')!r} is invalid: {exc}") from None

"""The assessment document as JSON: sorted keys, byte-stable."""

from __future__ import annotations

import json
from typing import Any, Mapping


def render(doc: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> str:
    """The document itself (`v` is unused: JSON needs no view)."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"

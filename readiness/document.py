"""The assessment document: one versioned JSON object per assessment.

Everything the reports, the history and `readiness merge` read comes from
this document, so a stored assessment can be re-rendered anywhere. The JSON
Schemas live beside this module, one frozen file per version
(schemas/assessment-v<N>.json), and `validate` checks a document against the
schema of its own version, so documents written by an older Readiness still
load and render.

SCHEMA_VERSION history:
  1 - first version: project, model, git, host, tool_versions, config_digest,
      profile, gates, components, score, band, verdict, baseline, trend.
  2 - `partial` (null, or the gates that ran and those the command line left
      out) and `verdict.partial`: a partial run is never a ship decision;
      `score_band` (the score's own band) and `band` now follows the verdict
      ("blocked by parity", "partial run"), so it never says "production
      ready" beside DO NOT SHIP; optional `test_runtimes` (the interpreters
      that ran the project's tests, as they reported themselves).
  3 - the gate status `off`: a gate turned off by the configuration or the
      command line (`skip`, `enable`, `--gate`, `--skip`, no [model] or
      [code] section), outside the score, with its reason in
      `evidence.off_because`. Versions 1 and 2 wrote such a gate as
      `skipped` with `evidence.configured_off = true`; they still load,
      render and compare as turned off (`gates.result.status_of`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

from gates.result import GateResult
from readiness.scoring import Score
from readiness.verdict import Verdict

SCHEMA_VERSION = 3
KNOWN_VERSIONS = (1, 2, 3)


class DocumentError(Exception):
    """An assessment document that cannot be read; the message names the file."""


def measured(*, generated_at: str, project: Mapping[str, Any], model: Mapping[str, Any] | None,
             git: Mapping[str, Any], host: Mapping[str, Any], tool_versions: Mapping[str, Any],
             config_digest: str, profile: str, results: Sequence[GateResult], score: Score,
             partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document as far as it is known before the verdict: what was measured.

    The baseline comparison reads this (`regression.compare`); `decided` adds
    the verdict, the comparison and the trend. `partial` is None for a full
    assessment, else {"ran", "left_out", "request"}.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at,
        "project": dict(project),
        "model": dict(model) if model is not None else None,
        "git": dict(git),
        "host": dict(host),
        "tool_versions": dict(tool_versions),
        "config_digest": config_digest,
        "profile": profile,
        "gates": [r.to_dict() for r in results],
        "components": [c.to_dict() for c in score.components],
        "score": round(score.value, 4),
        "score_band": score.band,
        "partial": _partial(partial),
    }


def decided(measured: Mapping[str, Any], verdict: Verdict, baseline: Mapping[str, Any] | None = None,
            trend: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The whole document: what was measured, the verdict, the baseline comparison, the trend."""
    if (measured["partial"] is not None) != verdict.partial:
        raise ValueError("the verdict and the document disagree on whether the assessment is partial")
    return {**measured, "band": verdict.band or measured["score_band"], "verdict": verdict.to_dict(),
            "baseline": dict(baseline) if baseline is not None else None, "trend": [dict(t) for t in trend]}


def build(*, generated_at: str, project: Mapping[str, Any], model: Mapping[str, Any] | None,
          git: Mapping[str, Any], host: Mapping[str, Any], tool_versions: Mapping[str, Any],
          config_digest: str, profile: str, results: Sequence[GateResult], score: Score,
          verdict: Verdict, baseline: Mapping[str, Any] | None = None,
          trend: Sequence[Mapping[str, Any]] = (), partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the document from its parts (the clock is passed in): `measured`, then `decided`."""
    return decided(measured(generated_at=generated_at, project=project, model=model, git=git, host=host,
                            tool_versions=tool_versions, config_digest=config_digest, profile=profile,
                            results=results, score=score, partial=partial),
                   verdict, baseline, trend)


def _partial(partial: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if partial is None:
        return None
    return {"ran": list(partial["ran"]), "left_out": list(partial["left_out"]),
            "request": str(partial["request"])}



@lru_cache(maxsize=len(KNOWN_VERSIONS))
def schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The shipped JSON Schema of `version` (read once; callers must not modify it)."""
    name = f"schemas/assessment-v{version}.json"
    return json.loads(resources.files("readiness").joinpath(name).read_text(encoding="utf-8"))


def validate(document: Any, source: str = "<document>") -> dict[str, Any]:
    """Return `document` if it matches the schema; raise DocumentError otherwise."""
    if not isinstance(document, dict):
        raise DocumentError(f"{source}: not an assessment document (expected a JSON object)")
    version = document.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise DocumentError(f"{source}: schema_version {version} is newer than this readiness "
                            f"understands ({SCHEMA_VERSION}); upgrade readiness")
    if version not in KNOWN_VERSIONS or isinstance(version, bool):
        version = SCHEMA_VERSION  # the current schema names what is wrong with it
    try:
        jsonschema.validate(document, schema(version))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise DocumentError(f"{source}: invalid assessment document at {where}: {exc.message}") from None
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: contains {name} (assessment documents carry finite numbers only)")


def load(path: Path) -> dict[str, Any]:
    """Read and validate an assessment JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{path}: not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DocumentError(f"{path}: not valid JSON: {exc}") from None
    except ValueError as exc:
        raise DocumentError(f"{path}: {exc}") from None
    return validate(data, str(path))


def results_of(document: Mapping[str, Any]) -> list[GateResult]:
    """The gate results stored in a (validated) document."""
    return [GateResult.from_dict(g) for g in document["gates"]]

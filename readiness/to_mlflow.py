"""Log one assessment to MLflow: the optional `readiness assess --mlflow`.

One MLflow run per assessment, in the experiment `readiness/<project>`:

- metrics: `score`, `regressions` (how many; only with a baseline),
  `component.<name>` (0..100), `gate.<name>.score` (0..1) and
  `gate.<name>.<metric>` for every finite number in a gate's metrics;
- params: project, profile, model adapter / checkpoint / fingerprint, git
  commit / branch, config digest, generated_at;
- tags: `readiness.ship`, `readiness.band`, `readiness.vetoed_by`,
  `readiness.baseline`, `readiness.alias`;
- artifacts: the assessment document (`assessment.json`) and the report
  files given, under `reports/`.

When `registered_model` is set, the alias (default `ready`) is pointed at a
model version **only when the verdict is ship**: at `model_version` when
given, else at a new version created from this run. A verdict of no ship
leaves the registry exactly as it was (an alias already there keeps pointing
at the last version that shipped) and says so in the `readiness.alias` tag.

MLflow is optional and imported only here, only when logging: without it
`TrackingError` says how to install it. The pure functions (`metrics_of`,
`params_of`, `tags_of`) need nothing. A local file store works for tests and
single machines (MLflow 3 wants `MLFLOW_ALLOW_FILE_STORE=true` for it).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

_KEY_FORBIDDEN = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_KEY, _MAX_PARAM = 250, 6000


class TrackingError(Exception):
    """Logging to MLflow failed; the message says where and why."""


class MlflowSettings(BaseModel):
    """`[mlflow]`: where to log. Empty strings mean MLflow's own defaults / no registry.

    The one definition: the configuration validates its table with it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = ""
    registry_uri: str = ""
    experiment: str = "readiness/{project}"
    registered_model: str = ""
    alias: str = "ready"
    model_version: str = ""


def metrics_of(document: Mapping[str, Any]) -> dict[str, float]:
    """Every finite number of the assessment, keyed as MLflow accepts."""
    out: dict[str, float] = {}
    _put(out, "score", document.get("score"))
    baseline = _table(document, "baseline")
    if baseline and not baseline.get("first_run"):
        _put(out, "regressions", len(baseline.get("regressions") or ()))
    for component in _tables(document.get("components")):
        _put(out, f"component.{component.get('name')}", component.get("score"))
    for gate in _tables(document.get("gates")):
        name = gate.get("name")
        _put(out, f"gate.{name}.score", gate.get("score"))
        for metric, value in _table(gate, "metrics").items():
            _put(out, f"gate.{name}.{metric}", value)
    return out


def params_of(document: Mapping[str, Any]) -> dict[str, str]:
    model, git = _table(document, "model"), _table(document, "git")
    values = {"project": _table(document, "project").get("name"),
              "profile": document.get("profile"), "model.adapter": model.get("adapter"),
              "model.checkpoint": model.get("checkpoint"), "model.fingerprint": model.get("fingerprint"),
              "git.commit": git.get("commit"), "git.branch": git.get("branch"),
              "config_digest": document.get("config_digest"), "generated_at": document.get("generated_at")}
    return {key: str(value)[:_MAX_PARAM] for key, value in values.items() if value not in (None, "")}


def tags_of(document: Mapping[str, Any]) -> dict[str, str]:
    verdict, baseline = _table(document, "verdict"), _table(document, "baseline")
    if not baseline:
        source = "none (history off)"
    else:
        source = "first run" if baseline.get("first_run") else str(baseline.get("source") or "given")
    return {"readiness.ship": "true" if verdict.get("ship") is True else "false",
            "readiness.band": str(document.get("band") or ""),
            "readiness.vetoed_by": ", ".join(map(str, verdict.get("vetoed_by") or ())),
            "readiness.baseline": source,
            "mlflow.runName": f"{_table(document, 'project').get('name')} {document.get('generated_at')}"}


def log_assessment(document: Mapping[str, Any], settings: MlflowSettings = MlflowSettings(), *,
                   artifacts: Sequence[Path] = ()) -> dict[str, Any]:
    """Log `document` as one MLflow run; return {"run_id", "experiment_id", "alias"}.

    "alias" is {"model", "alias", "version"} when it was set, else None.
    """
    client, entities = _client(settings)
    project = str(_table(document, "project").get("name") or "unnamed")
    try:
        experiment_id = _experiment(client, settings.experiment.format(project=project))
        run = client.create_run(experiment_id, tags=tags_of(document))
    except Exception as exc:  # MLflow raises many types; all mean "could not log"
        raise TrackingError(f"MLflow at {settings.tracking_uri or '(default URI)'}: {exc}") from None
    run_id = run.info.run_id
    try:
        when_ms = _millis(document.get("generated_at"))
        client.log_batch(run_id,
                         metrics=[entities.Metric(k, v, when_ms, 0) for k, v in metrics_of(document).items()],
                         params=[entities.Param(k, v) for k, v in params_of(document).items()])
        client.log_dict(run_id, dict(document), "assessment.json")
        for path in artifacts:
            client.log_artifact(run_id, str(path), "reports")
        alias = _alias(client, settings, document, run)
        client.set_tag(run_id, "readiness.alias", _alias_note(settings, alias))
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        _safely_fail(client, run_id)
        raise TrackingError(f"MLflow run {run_id}: {exc}") from None
    return {"run_id": run_id, "experiment_id": experiment_id, "alias": alias}


def _client(settings: MlflowSettings) -> tuple[Any, Any]:
    try:
        import mlflow.entities as entities
        from mlflow import MlflowClient
    except ImportError:
        raise TrackingError("--mlflow needs MLflow: pip install mlflow-skinny") from None
    try:
        client = MlflowClient(tracking_uri=settings.tracking_uri or None,
                              registry_uri=settings.registry_uri or settings.tracking_uri or None)
    except Exception as exc:
        raise TrackingError(f"MLflow at {settings.tracking_uri or '(default URI)'}: {exc}") from None
    return client, entities


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _alias(client: Any, settings: MlflowSettings, document: Mapping[str, Any],
           run: Any) -> dict[str, str] | None:
    """Point the alias at a version, only for a shipping verdict."""
    if not settings.registered_model or _table(document, "verdict").get("ship") is not True:
        return None
    name = settings.registered_model
    try:
        client.get_registered_model(name)
    except Exception:  # does not exist yet; a real failure shows again in create
        client.create_registered_model(name)
    version = settings.model_version or client.create_model_version(
        name, source=run.info.artifact_uri, run_id=run.info.run_id).version
    client.set_registered_model_alias(name, settings.alias, str(version))
    return {"model": name, "alias": settings.alias, "version": str(version)}


def _alias_note(settings: MlflowSettings, alias: Mapping[str, str] | None) -> str:
    if not settings.registered_model:
        return "not set: no registered_model configured"
    if alias is None:
        return f"not set: verdict is not ship ({settings.registered_model}@{settings.alias} unchanged)"
    return f"{alias['model']}@{alias['alias']} -> version {alias['version']}"


def _safely_fail(client: Any, run_id: str) -> None:
    try:
        client.set_terminated(run_id, "FAILED")
    except Exception:  # the original error is the one worth reporting
        pass


def _put(out: dict[str, float], key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return
    out[_KEY_FORBIDDEN.sub("_", key)[:_MAX_KEY]] = float(value)


def _millis(generated_at: Any) -> int:
    """The assessment's own time, so a re-logged document keeps its timestamps."""
    try:
        when = datetime.fromisoformat(str(generated_at))
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _tables(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []

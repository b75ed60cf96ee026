"""MLflow tracking, the model registry, and the promotion gate.

Each training run is an MLflow run (params, metrics, data fingerprint, plots) whose
bundle becomes a registered model version of ``tijdig-risk``. The alias ``champion``
is what the service loads; it moves only when the gate passes. A refused version gets
the alias ``candidate`` and a tag saying why, so nothing is lost and nothing worse is
served. The alias ``challenger``, set by hand, is what the service may score in the
shadow (``service.shadow``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.bundle import (
    MANIFEST_TAG,
    REGISTERED_MODEL_NAME,
    Bundle,
    BundleError,
    check_servable,
    load_bundle,
    manifest_digest,
)
from training.components import FittedComponent
from training.evaluate import binary_metrics
from training.label_definition import definition_of
from training.model_card import model_card
from training.monitoring.fairness import FairnessTable, fairness_violations
from training.monitoring.policy import FairnessPolicy, fairness_policy
from training.settings import TrainingSettings

CHAMPION = "champion"
CANDIDATE = "candidate"
CHALLENGER = "challenger"  # what the service's shadow scores beside the champion

#: MLflow's warnings on every ``log_model`` that say nothing a user can act on: the
#: pickled python_model is only a thin loader of the bundle folder (its files are checked
#: by their manifest), and its input is any frame holding the bundle's feature names.
QUIETENED_MLFLOW_WARNINGS = (
    "Passing a Python object as `python_model`",
    "Failed to infer model signature",
)


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextmanager
def _quiet_mlflow_model_warnings() -> Iterator[None]:
    """Drop :data:`QUIETENED_MLFLOW_WARNINGS` from MLflow's pyfunc logger, and nothing else."""
    logger = logging.getLogger("mlflow.pyfunc")
    quiet = _DropMessages(QUIETENED_MLFLOW_WARNINGS)
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@dataclass(frozen=True)
class GateRules:
    """How much worse than the champion a candidate may be (noise), and absolute floors."""

    roc_auc_tolerance: float = 0.002
    brier_tolerance: float = 0.0005
    max_ece: float = 0.03
    min_roc_auc: float = 0.6
    #: fairness bounds; None: the versioned ``models/config/fairness_policy.json``
    fairness: FairnessPolicy | None = None


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str]
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    def summary(self) -> str:
        verdict = "promoted to champion" if self.promote else "kept as candidate"
        return f"{verdict}: " + "; ".join(self.reasons)


def promotion_gate(
    candidate: Bundle,
    X_val: np.ndarray,
    y_val: np.ndarray,
    champion: Bundle | None,
    rules: GateRules = GateRules(),
    components: dict[str, FittedComponent] | None = None,
    unusable_champion: str | None = None,
    candidate_version: str | None = None,
) -> GateDecision:
    """Compare candidate and champion on the same validation rows.

    The candidate passes when it meets the absolute floors and is not worse than the
    champion on ROC AUC and Brier score beyond the tolerances, when its fairness table
    (``metadata["fairness"]``, computed on the same validation rows) keeps the fairness
    bounds — and when every bundle component passes its own comparison with the
    champion's component.
    ``unusable_champion`` says why there is a champion but no bundle to compare with
    (:meth:`Registry.champion_or_why_not`); the floors alone decide, and the reasons say so.

    Labels of another horizon or definition than the champion's (``metadata["label"]``)
    make the two incomparable: a longer horizon has more positives and another score
    scale. The candidate is then refused, with the reason and how to promote it by hand
    (``candidate_version`` names it).
    """
    decision = _risk_gate(
        candidate, X_val, y_val, champion, rules, unusable_champion, candidate_version
    )
    _fairness_gate(decision, candidate, rules.fairness or fairness_policy())
    for name, fitted in (components or {}).items():
        previous = champion.components.get(name) if champion is not None else None
        for i, (passed, reason) in enumerate(fitted.compare(previous)):
            decision.checks[f"{name}.{i}"] = passed
            decision.reasons.append(f"{name}: {reason}")
            decision.promote = decision.promote and passed
    return decision


def _fairness_gate(decision: GateDecision, candidate: Bundle, policy: FairnessPolicy) -> None:
    """Add the fairness rule to ``decision``: every broken bound is a reason to refuse."""
    doc = candidate.metadata.get("fairness")
    if doc is None:
        decision.reasons.append(
            "fairness: the bundle has no fairness table (trained before it was computed); "
            "bounds not checked"
        )
        return
    violations = fairness_violations(FairnessTable.from_dict(doc), policy)
    decision.checks["fairness"] = not violations
    decision.promote = decision.promote and not violations
    decision.reasons += [v.reason() for v in violations] or [
        f"fairness within the bounds of {policy.version}"
    ]


def _risk_gate(
    candidate: Bundle,
    X_val: np.ndarray,
    y_val: np.ndarray,
    champion: Bundle | None,
    rules: GateRules,
    unusable_champion: str | None = None,
    candidate_version: str | None = None,
) -> GateDecision:
    cand = binary_metrics(y_val, candidate.predict_proba(X_val))
    checks = {
        "roc_auc_floor": cand["roc_auc"] >= rules.min_roc_auc,
        "calibration": cand["ece"] <= rules.max_ece,
    }
    reasons = []
    if not checks["roc_auc_floor"]:
        reasons.append(f"ROC AUC {cand['roc_auc']:.4f} below the floor {rules.min_roc_auc}")
    if not checks["calibration"]:
        reasons.append(f"ECE {cand['ece']:.4f} above the limit {rules.max_ece}")
    if champion is None:
        if all(checks.values()):
            why = "no champion yet" if unusable_champion is None else unusable_champion
            reasons.append(f"{why}; ROC AUC {cand['roc_auc']:.4f}, ECE {cand['ece']:.4f}")
        return GateDecision(all(checks.values()), reasons, cand, checks=checks)

    differences = definition_of(candidate.metadata).differences(definition_of(champion.metadata))
    if differences:
        reasons.append(
            f"{'; '.join(differences)} (champion {champion.version}): not comparable; promote "
            f"explicitly with `tijdig models promote {candidate_version or 'VERSION'}` after review"
        )
        return GateDecision(
            False, reasons, cand, None, champion.version, {**checks, "label_comparable": False}
        )
    index = {name: i for i, name in enumerate(candidate.feature_names)}
    missing = [n for n in champion.feature_names if n not in index]
    if missing:
        reasons.append(
            f"champion {champion.version} uses features this data no longer has ({missing[:3]}); "
            "cannot compare on the same rows — promote explicitly with --force"
        )
        return GateDecision(
            False, reasons, cand, None, champion.version, {**checks, "comparable": False}
        )
    champ = binary_metrics(
        y_val, champion.predict_proba(X_val[:, [index[n] for n in champion.feature_names]])
    )
    checks["roc_auc_vs_champion"] = cand["roc_auc"] >= champ["roc_auc"] - rules.roc_auc_tolerance
    checks["brier_vs_champion"] = cand["brier"] <= champ["brier"] + rules.brier_tolerance
    verb = {True: "not worse than", False: "worse than"}
    reasons.append(
        f"ROC AUC {cand['roc_auc']:.4f} {verb[checks['roc_auc_vs_champion']]} champion "
        f"{champion.version} {champ['roc_auc']:.4f} (tolerance {rules.roc_auc_tolerance})"
    )
    reasons.append(
        f"Brier {cand['brier']:.5f} {verb[checks['brier_vs_champion']]} champion "
        f"{champ['brier']:.5f} (tolerance {rules.brier_tolerance})"
    )
    return GateDecision(all(checks.values()), reasons, cand, champ, champion.version, checks)


class Registry:
    """Thin wrapper over MLflow tracking + model registry at one tracking URI."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "tijdig-early-warning",
        model_name: str = REGISTERED_MODEL_NAME,
        artifact_location: str | None = None,
    ) -> None:
        """``artifact_location`` (a folder or URI) applies when the experiment is created;
        by default MLflow's own default (``./mlruns`` for a database backend)."""
        import mlflow
        from mlflow.tracking import MlflowClient

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        existing = self.client.get_experiment_by_name(experiment)
        if existing is not None:
            self.experiment_id = existing.experiment_id
        else:
            if artifact_location and "://" not in artifact_location:
                artifact_location = Path(artifact_location).resolve().as_uri()
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=artifact_location
            )

    @classmethod
    def from_settings(cls, settings: TrainingSettings) -> Registry:
        return cls(
            settings.mlflow_tracking_uri,
            settings.experiment,
            artifact_location=str(settings.artifact_dir),
        )

    def champion(self) -> Bundle | None:
        """The bundle behind the champion alias, or None when there is none (or it is broken)."""
        return self.champion_or_why_not()[0]

    def champion_or_why_not(self) -> tuple[Bundle | None, str | None]:
        """The champion's bundle, or None with the reason when the alias points at a bundle
        this code cannot load (broken, or trained on another feature set): the gate then
        judges the candidate on the floors alone and must say so."""
        try:
            version = self.client.get_model_version_by_alias(self.model_name, CHAMPION).version
        except Exception:
            return None, None
        try:
            return load_bundle(f"models:/{self.model_name}@{CHAMPION}", self.tracking_uri), None
        except BundleError as exc:
            return None, f"champion version {version} cannot be loaded by this code ({exc})"

    def log_and_register(
        self,
        bundle: Bundle,
        params: dict[str, Any],
        metrics: dict[str, dict[str, float]],
        artifacts: list[Path],
        tags: dict[str, str],
    ) -> str:
        """Log one run and register its bundle; returns the new version number."""
        mlflow = self._mlflow
        from training.pyfunc import BundlePythonModel

        with (
            mlflow.start_run(experiment_id=self.experiment_id) as run,
            tempfile.TemporaryDirectory() as tmp,
        ):
            self._log_contents(params, metrics, artifacts, tags)
            (Path(tmp) / "metrics.json").write_text(json.dumps(metrics, indent=2))
            mlflow.log_artifact(str(Path(tmp) / "metrics.json"), artifact_path="evaluation")
            bundle.metadata["run_id"] = run.info.run_id
            folder = bundle.save(Path(tmp) / "bundle")
            # reload what was written: a bundle that cannot be read back is never registered
            Bundle.load(folder)
            digest = manifest_digest(folder)
            with _quiet_mlflow_model_warnings():
                info = mlflow.pyfunc.log_model(
                    name="bundle",
                    python_model=BundlePythonModel(),
                    artifacts={"bundle": str(folder)},
                    pip_requirements=["tijdig"],
                    registered_model_name=self.model_name,
                )
            version = str(info.registered_model_version)
            # the registry's own record of the files: loading @alias compares the manifest
            self.client.set_model_version_tag(self.model_name, version, MANIFEST_TAG, digest)
            bundle.version = f"{self.model_name}/{version}"
            # the model card of every registered version, beside its run (AI Act art. 11)
            mlflow.log_text(model_card(bundle), "governance/model_card.md")
            if "fairness" in bundle.metadata:
                mlflow.log_dict(bundle.metadata["fairness"], "governance/fairness.json")
        return version

    def log_run(
        self,
        params: dict[str, Any],
        metrics: dict[str, dict[str, float]],
        artifacts: list[Path],
        tags: dict[str, str],
    ) -> str:
        """Log one run without a model (e.g. a cross-validation); returns its run id."""
        with self._mlflow.start_run(experiment_id=self.experiment_id) as run:
            self._log_contents(params, metrics, artifacts, tags)
            return str(run.info.run_id)

    def _log_contents(
        self,
        params: dict[str, Any],
        metrics: dict[str, dict[str, float]],
        artifacts: list[Path],
        tags: dict[str, str],
    ) -> None:
        """Params, metrics per model (``model.metric``), tags and evaluation artifacts
        into the active run."""
        mlflow = self._mlflow
        mlflow.log_params({k: _short(v) for k, v in params.items()})
        for model_name, values in metrics.items():
            mlflow.log_metrics({f"{model_name}.{k}": v for k, v in values.items()})
        mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")

    def record_gate(self, version: str, decision: GateDecision) -> None:
        """Move the alias as the gate decided and write the decision on the version and
        its run."""
        outcome = "passed" if decision.promote else "refused"
        self.client.set_model_version_tag(self.model_name, version, "gate", outcome)
        run_id = self.client.get_model_version(self.model_name, version).run_id
        if run_id:
            self.client.set_tag(run_id, "gate", outcome)
        self.client.set_model_version_tag(
            self.model_name, version, "gate_reasons", " | ".join(decision.reasons)[:4000]
        )
        alias = CHAMPION if decision.promote else CANDIDATE
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def promote(self, version: str) -> None:
        """Explicit promotion (``tijdig models promote``): a human decision, recorded as such."""
        # must load and serve: a champion the service refused would leave it serving
        # nothing after its next start
        check_servable(load_bundle(f"models:/{self.model_name}/{version}", self.tracking_uri))
        self.client.set_model_version_tag(self.model_name, version, "gate", "promoted_by_hand")
        self.client.set_registered_model_alias(self.model_name, CHAMPION, version)

    def set_challenger(self, version: str) -> None:
        """Point the ``challenger`` alias at ``version`` (``tijdig models challenger``):
        what a service with ``shadow_share`` above 0 scores in the shadow at its next
        start. It must load and serve, as a champion must."""
        check_servable(load_bundle(f"models:/{self.model_name}/{version}", self.tracking_uri))
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, version)

    def versions(self) -> list[dict[str, Any]]:
        out = []
        aliases: dict[str, list[str]] = {}
        try:
            rm = self.client.get_registered_model(self.model_name)
            for alias, v in (rm.aliases or {}).items():
                aliases.setdefault(str(v), []).append(alias)
        except Exception:
            return []
        for mv in self.client.search_model_versions(f"name='{self.model_name}'"):
            run = self.client.get_run(mv.run_id) if mv.run_id else None
            out.append(
                {
                    "version": str(mv.version),
                    "aliases": aliases.get(str(mv.version), []),
                    "gate": (mv.tags or {}).get("gate", ""),
                    "roc_auc": run.data.metrics.get("model.roc_auc") if run else None,
                    "ece": run.data.metrics.get("model.ece") if run else None,
                    "created": mv.creation_timestamp,
                }
            )
        return sorted(out, key=lambda r: int(r["version"]))


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:500]


def gate_as_dict(decision: GateDecision) -> dict[str, Any]:
    return asdict(decision)

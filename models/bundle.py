"""The bundle: the unit of deployment (ARCHITECTURE.md, decision 3).

One folder holds everything a decision needs, versioned together:

================================  =========================================================
``booster.txt``                   the LightGBM risk model (native text format)
``calibrator.json``               Platt scaling on the booster's log-odds (keeps the ranking)
``features.json``                 feature names in order, feature-set version, monotone dirs
``risk_policy.json``              the early-warning policy in force for this bundle
``bnpl_policy.json``              the pay-later decision policy in force for this bundle
``reference.json``                reference feature distributions (quantiles) for drift
``metadata.json``                 version, training window, data fingerprint, metrics
``manifest.json``                 SHA-256 of every other file (written last by ``save``)
================================  =========================================================

The manifest is checked before anything is parsed, so a truncated or altered file is
refused by name; a bundle written before manifests existed is only parse-checked.

The service loads it once per worker in the lifespan and predicts with the native
``Booster`` on a float64 row (no pandas, no MLflow pyfunc on the request path).
MLflow stores the same folder as a registered model version's artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from models.bnpl import BnplPolicy
from models.calibration import apply_platt
from models.components import COMPONENT_CLASSES, load_component
from models.policy import RiskPolicy
from models.reasons import Reason, top_reasons

BUNDLE_FORMAT = 1
REGISTERED_MODEL_NAME = "tijdig-risk"
_FILES = ("booster.txt", "calibrator.json", "features.json", "risk_policy.json", "metadata.json")
MANIFEST = "manifest.json"
MANIFEST_TAG = "bundle_manifest_sha256"  # the model version tag holding manifest_digest()
_HASH_CHUNK_BYTES = 1 << 20


class BundleError(RuntimeError):
    """A bundle is missing, incomplete or inconsistent; the caller keeps what it had.

    ``file`` names the bundle file at fault (a POSIX path inside the bundle) when one is.
    """

    def __init__(self, message: str, *, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


@dataclass
class Bundle:
    """A trained, calibrated risk model with its policy and provenance."""

    booster: lgb.Booster
    calibrator: dict[str, float]  # {"slope": a, "intercept": b}: p = sigmoid(a * logit(raw) + b)
    feature_names: tuple[str, ...]
    policy: RiskPolicy
    metadata: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    version: str = "unregistered"
    components: dict[str, Any] = field(default_factory=dict)  # see models.components
    bnpl_policy: BnplPolicy = field(default_factory=BnplPolicy.default)

    # ------------------------------------------------------------------ predict
    def raw_probability(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated booster output, shape (n,)."""
        return np.asarray(self.booster.predict(self._check(X), num_threads=self._threads(X)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(payment difficulty within the horizon), shape (n,)."""
        return self.calibrate(self.raw_probability(X))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Platt scaling on log-odds: strictly monotone, so ranking (ROC/PR AUC) is kept."""
        return apply_platt(raw, self.calibrator)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """SHAP contributions in log-odds, shape (n, features + 1); last column = bias."""
        return np.asarray(
            self.booster.predict(self._check(X), pred_contrib=True, num_threads=self._threads(X))
        )

    def explain(self, X: np.ndarray, k: int | None = None) -> list[list[Reason]]:
        """Top reasons per row (most decisive first)."""
        k = self.policy.top_reasons if k is None else k
        contrib = self.contributions(X)
        return [
            top_reasons(contrib[i, :-1].tolist(), X[i].tolist(), self.feature_names, k)
            for i in range(X.shape[0])
        ]

    def _check(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"feature matrix must be (n, {len(self.feature_names)}); got {X.shape}"
            )
        return X

    @staticmethod
    def _threads(X: np.ndarray) -> int:
        # one thread for small requests: OpenMP start-up costs more than it saves and
        # several uvicorn workers share the cores (STYLE.md pitfalls)
        return 1 if X.shape[0] < 2048 else max(1, _thread_cap or os.cpu_count() or 1)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "booster.txt"))
        _write_json(directory / "calibrator.json", {"method": "platt_logit", **self.calibrator})
        _write_json(
            directory / "features.json",
            {
                "names": list(self.feature_names),
                "feature_set_version": self.metadata.get("feature_set_version"),
            },
        )
        _write_json(directory / "risk_policy.json", self.policy.to_dict())
        _write_json(directory / "bnpl_policy.json", self.bnpl_policy.to_dict())
        _write_json(directory / "reference.json", self.reference)
        _write_json(directory / "metadata.json", {"bundle_format": BUNDLE_FORMAT, **self.metadata})
        for name, component in self.components.items():
            component.save(directory / name)
        write_manifest(directory)
        return directory

    @classmethod
    def load(cls, directory: Path, version: str | None = None) -> Bundle:
        """Load and check a bundle folder; raises :class:`BundleError` when unusable."""
        directory = Path(directory)
        missing = [f for f in _FILES if not (directory / f).is_file()]
        if missing:
            raise BundleError(f"bundle at {directory} is missing {', '.join(missing)}")
        verify_manifest(directory)
        try:
            booster = lgb.Booster(model_file=str(directory / "booster.txt"))
            cal = _read_json(directory / "calibrator.json")
            names = tuple(_read_json(directory / "features.json")["names"])
            policy = RiskPolicy.from_dict(_read_json(directory / "risk_policy.json"))
            metadata = _read_json(directory / "metadata.json")
            bnpl_path = directory / "bnpl_policy.json"
            bnpl_policy = (
                BnplPolicy.from_dict(_read_json(bnpl_path))
                if bnpl_path.is_file()
                else BnplPolicy.default()
            )
            ref_path = directory / "reference.json"
            reference = _read_json(ref_path) if ref_path.is_file() else {}
        except (OSError, ValueError, KeyError, lgb.basic.LightGBMError) as exc:
            raise BundleError(f"bundle at {directory} cannot be read: {exc}") from exc
        if booster.num_feature() != len(names):
            raise BundleError(
                f"booster expects {booster.num_feature()} features, features.json lists {len(names)}"
            )
        if cal.get("method") != "platt_logit":
            raise BundleError(f"unknown calibrator method {cal.get('method')!r} in {directory}")
        bundle = cls(
            booster=booster,
            calibrator={"slope": float(cal["slope"]), "intercept": float(cal["intercept"])},
            feature_names=names,
            policy=policy,
            metadata=metadata,
            reference=reference,
            version=version or str(metadata.get("version", f"local:{directory.name}")),
            bnpl_policy=bnpl_policy,
        )
        for name in COMPONENT_CLASSES:
            if (directory / name).is_dir():
                try:
                    bundle.components[name] = load_component(name, directory / name)
                except Exception as exc:
                    raise BundleError(
                        f"bundle component {name!r} at {directory} is unusable: {exc}"
                    ) from exc
        bundle.self_check()
        return bundle

    def self_check(self) -> None:
        """Predict on a neutral row: a bundle that cannot answer must never be served."""
        row = np.full((1, len(self.feature_names)), np.nan)
        p = self.predict_proba(row)
        if not np.all(np.isfinite(p)) or not np.all((p >= 0) & (p <= 1)):
            raise BundleError(f"bundle {self.version} returns an invalid probability {p}")
        if not self.calibrator.get("slope", 0) > 0:
            raise BundleError(
                f"calibrator slope must be positive (monotone); got {self.calibrator}"
            )


def load_bundle(uri: str, tracking_uri: str | None = None) -> Bundle:
    """Load a bundle from a local folder or an MLflow URI (``models:/name@alias``).

    MLflow is imported only here (start-up and reload), never on the request path.
    """
    folder, version = resolve_bundle(uri, tracking_uri)
    return Bundle.load(folder, version=version)


def resolve_bundle(uri: str, tracking_uri: str | None = None) -> tuple[Path, str | None]:
    """The local folder behind ``uri`` (an MLflow URI is downloaded) and the version it
    is registered as (None for a local folder: the bundle's metadata names it)."""
    if uri.startswith(("models:/", "runs:/")):
        import mlflow
        from mlflow.tracking import MlflowClient

        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(tracking_uri)
        version = uri
        registered_manifest: str | None = None
        if uri.startswith("models:/") and "@" in uri:
            name, alias = uri.removeprefix("models:/").split("@", 1)
            try:
                mv = MlflowClient().get_model_version_by_alias(name, alias)
            except Exception as exc:
                raise BundleError(f"no model version behind {uri}: {exc}") from exc
            version = f"{name}/{mv.version}"
            registered_manifest = (mv.tags or {}).get(MANIFEST_TAG)
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        except Exception as exc:
            raise BundleError(f"cannot download {uri}: {exc}") from exc
        folder = (
            local / "artifacts" / "bundle" if (local / "artifacts" / "bundle").is_dir() else local
        )
        if registered_manifest is not None:
            _check_registered_manifest(folder, registered_manifest, version)
        return folder, version
    return Path(uri), None


def manifest_digest(directory: Path) -> str:
    """SHA-256 of the bundle's ``manifest.json`` (the registry records it on the version)."""
    return hashlib.sha256((Path(directory) / MANIFEST).read_bytes()).hexdigest()


def _check_registered_manifest(folder: Path, recorded: str, version: str) -> None:
    """The downloaded manifest must be the one recorded when the version was registered:
    a bundle whose files and manifest were both replaced in the artifact store is refused."""
    try:
        actual = manifest_digest(folder)
    except OSError as exc:
        raise BundleError(f"bundle {version}: {MANIFEST} is missing ({exc})") from exc
    if actual != recorded:
        raise BundleError(
            f"bundle {version}: {MANIFEST} differs from the one recorded at registration"
        )


def _file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 (hex) of every file under ``directory`` but the manifest, by POSIX path."""
    digests: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == MANIFEST:
            continue
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_HASH_CHUNK_BYTES):
                sha.update(chunk)
        digests[relative] = sha.hexdigest()
    return digests


def content_digest(directory: Path) -> str:
    """SHA-256 over the SHA-256 of every file of the bundle at ``directory``: equal for
    two folders exactly when their files are (a parse verdict can be kept by it)."""
    listing = json.dumps(_file_digests(Path(directory)), sort_keys=True).encode()
    return hashlib.sha256(listing).hexdigest()


def write_manifest(directory: Path) -> Path:
    """Record the SHA-256 of every file of the bundle at ``directory`` in ``manifest.json``
    (what :func:`verify_manifest` checks before the bundle is parsed)."""
    path = Path(directory) / MANIFEST
    _write_json(path, {"bundle_format": BUNDLE_FORMAT, "sha256": _file_digests(Path(directory))})
    return path


def verify_manifest(directory: Path) -> str | None:
    """Check every file of the bundle at ``directory`` against its manifest; returns the
    SHA-256 of the manifest, or None for a bundle without one (written before manifests:
    the caller can only parse-check it). Raises :class:`BundleError` naming the first
    file that is missing, altered or not listed."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        recorded = _read_json(path)["sha256"]
        if not isinstance(recorded, dict):
            raise TypeError(f"sha256 must be an object; got {type(recorded).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"bundle at {directory}: {MANIFEST} cannot be read: {exc}", file=MANIFEST
        ) from exc
    actual = _file_digests(directory)
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            raise BundleError(
                f"bundle at {directory}: {name} is missing (listed in {MANIFEST})", file=name
            )
        if name not in recorded:
            raise BundleError(
                f"bundle at {directory}: {name} is not listed in {MANIFEST}", file=name
            )
        if recorded[name] != actual[name]:
            raise BundleError(
                f"bundle at {directory}: {name} does not match its SHA-256 in {MANIFEST} "
                "(truncated or altered)",
                file=name,
            )
    return manifest_digest(directory)


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


_thread_cap: int | None = None


@contextmanager
def max_threads(n: int) -> Iterator[None]:
    """Hold large predictions in this process to ``n`` threads inside the block: a worker
    of a parallel batch shares the cores with its siblings (2 workers x 2 OpenMP threads
    on 2 cores only add switching)."""
    global _thread_cap
    previous, _thread_cap = _thread_cap, max(1, int(n))
    try:
        yield
    finally:
        _thread_cap = previous


def check_servable(bundle: Bundle) -> None:
    """Raise :class:`BundleError` unless ``bundle`` can serve this build: trained on this
    build's feature set in its order, and a trial prediction and explanation of a neutral
    row work. What the service checks before it swaps a bundle in, and what a promotion
    by hand checks before it moves ``champion`` (a champion the service then refused to
    load would leave it serving nothing after a restart)."""
    from features.build import FEATURE_NAMES  # here: features imports nothing of models

    if tuple(bundle.feature_names) != tuple(FEATURE_NAMES):
        missing = sorted(set(FEATURE_NAMES) - set(bundle.feature_names))
        extra = sorted(set(bundle.feature_names) - set(FEATURE_NAMES))
        raise BundleError(
            f"bundle {bundle.version} was trained on other features than this service computes "
            f"(missing {missing[:5]}, extra {extra[:5]}, or another order)"
        )
    try:  # the request path end to end: predict and explain one neutral row
        row = np.full((1, len(FEATURE_NAMES)), np.nan)
        bundle.predict_proba(row)
        bundle.explain(row)
    except Exception as exc:
        raise BundleError(f"bundle {bundle.version} fails a trial prediction: {exc}") from exc

"""The model card of a registered risk model version (Markdown; AI Act art. 11, Annex IV).

:func:`model_card` reads a bundle (folder, loaded :class:`~models.bundle.Bundle`, or its
metadata alone) and writes what an auditor or a data scientist needs about one version:
intended use and users, uses it is not meant for, data and period, features, out-of-time
metrics against the baselines, calibration, the fairness table, the drift reference,
limitations, and where each AI Act and CCD2 obligation is met in the product. The
registry logs it with every registered version (``governance/model_card.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from features.build import FEATURES
from models.bundle import Bundle
from training.monitoring.drift import SCORE_KEY
from training.monitoring.fairness import FairnessTable, fairness_violations
from training.monitoring.policy import drift_policy, fairness_policy, outcome_policy

_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ks", "ece")

#: Where each obligation is met in the product: (law, article, obligation, where).
OBLIGATIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "AI Act",
        "art. 9",
        "risk management",
        "promotion gate with floors, champion comparison and fairness bounds "
        "(`training/registry.py::promotion_gate`); monitoring of drift and matured outcomes "
        "(`training/monitoring/`); limitations on this card",
    ),
    (
        "AI Act",
        "art. 10",
        "data governance, bias examination",
        "event contract validated all or nothing (`features/schemas.py`, pandera); "
        "point-in-time features and labels tested (`tests/data/test_features.py`); "
        "out-of-time split with a purge gap (`training/dataset.py`); fairness table by age "
        "band and household type (`training/monitoring/fairness.py`)",
    ),
    (
        "AI Act",
        "art. 11",
        "technical documentation",
        "this card, logged with every registered version; MLflow run with parameters, "
        "metrics, plots and data fingerprint; `docs/architecture.md`",
    ),
    (
        "AI Act",
        "art. 12",
        "automatic logging",
        "decision log: every decision with inputs, feature vector, outputs, model and "
        "policy versions (`service/decision_log/`, `GET /v1/decisions/{id}`)",
    ),
    (
        "AI Act",
        "art. 13",
        "transparency to deployers",
        "this card (intended use, limits, metrics); reason codes with Dutch and English "
        "texts on every answer (`models/reasons.py`)",
    ),
    (
        "AI Act",
        "art. 14",
        "human oversight",
        "the model recommends help, people act (`models/policy.py`); human review of any "
        "decision (`POST /v1/decisions/{id}/review`); a refused version is promoted only by "
        "a person (`tijdig models promote`)",
    ),
    (
        "AI Act",
        "art. 15",
        "accuracy, robustness",
        "out-of-time metrics against baselines (above); monotone constraints and behaviour "
        "tests (`tests/model/test_behaviour.py`); a bundle self-checks before it is served "
        "(`models/bundle.py::check_servable`)",
    ),
    (
        "AI Act",
        "art. 26",
        "deployer: monitoring, log retention",
        "drift and outcome monitoring (`training/monitoring/drift.py`, `outcomes.py`); "
        "decision log kept at least 183 days (`TIJDIG_DECISION_LOG_RETENTION_DAYS`, "
        "`tijdig decisions purge`)",
    ),
    (
        "AI Act",
        "art. 86",
        "explanation to affected persons",
        "the top reasons of each score, stored with the decision (`models/reasons.py`, "
        "decision log)",
    ),
    (
        "CCD2",
        "art. 18",
        "creditworthiness assessment",
        "pay-later decisions with reasons and a human-review path (`models/bnpl.py`); no "
        "special-category data among the features (list above)",
    ),
    (
        "CCD2",
        "art. 35",
        "forbearance before enforcement",
        "payment-plan advice the customer can keep (`models/plans.py`, affordability route); "
        "action `offer_payment_plan` before costs arise",
    ),
    (
        "CCD2",
        "art. 36",
        "early detection, referral to debt advice",
        "this early-warning model; action `refer_debt_help` (`models/policy.py`)",
    ),
)


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def _sources(
    source: Path | str | Bundle | Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """(metadata, reference, policies, version) of any accepted source."""
    if isinstance(source, Bundle):
        policies = {"risk": source.policy.to_dict(), "bnpl": source.bnpl_policy.to_dict()}
        return dict(source.metadata), dict(source.reference), policies, source.version
    if isinstance(source, Mapping):
        return dict(source), {}, {}, str(source.get("version", "unregistered"))
    folder = Path(source)
    metadata = _read(folder, "metadata.json")
    if metadata is None:
        raise FileNotFoundError(f"no metadata.json in {folder}: not a bundle folder")
    policies = {
        "risk": _read(folder, "risk_policy.json") or {},
        "bnpl": _read(folder, "bnpl_policy.json") or {},
    }
    version = str(metadata.get("version", f"local:{folder.name}"))
    return metadata, _read(folder, "reference.json") or {}, policies, version


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _period(dates: Any) -> str:
    """``first – last (n dates)`` of a segment's snapshot dates."""
    if not dates:
        return "?"
    if isinstance(dates, str):
        return dates
    return f"{dates[0]} – {dates[-1]} ({len(dates)} dates)"


def _metrics_section(metadata: Mapping[str, Any]) -> list[str]:
    table = metadata.get("out_of_time_metrics") or {"model": metadata.get("metrics", {})}
    lines = [
        "Out of time: the validation dates come after the training and calibration dates, "
        "with a purge gap of one label horizon.",
        "",
        "| model | " + " | ".join(m.replace("_", " ") for m in _METRICS) + " | rows |",
        "|---|" + "---:|" * (len(_METRICS) + 1),
    ]
    for name, m in table.items():
        values = " | ".join(_fmt(m.get(k, "–")) for k in _METRICS)
        lines.append(f"| {name} | {values} | {int(m.get('rows', 0))} |")
    return lines


def _fairness_section(metadata: Mapping[str, Any]) -> list[str]:
    doc = metadata.get("fairness")
    if doc is None:
        return ["No fairness table: this version was trained before it was computed."]
    table, policy = FairnessTable.from_dict(doc), fairness_policy()
    broken = fairness_violations(table, policy)
    verdict = [f"- {v.reason()}" for v in broken] or [f"- within every bound of {policy.version}"]
    return [
        "On the validation rows. Gate bounds "
        f"({policy.version}, groups of at least {policy.min_group_rows} rows, the unknown "
        f"group never gated): group ECE ≤ {policy.max_group_ece}; TPR gap ≤ "
        f"{policy.max_tpr_gap}; flags per observed case, largest over smallest group ≤ "
        f"{policy.max_flag_rate_disparity}.",
        "",
        *verdict,
        "",
        table.render().rstrip("\n"),
    ]


def _drift_section(reference: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    if not reference:
        return ["No drift reference in this bundle."]
    p = drift_policy()
    features = [k for k in reference if k != SCORE_KEY]
    # bundles trained before the reference moved to the out-of-time rows do not say so
    rows = metadata.get("drift_reference_rows", "training")
    lines = [
        f"`reference.json` holds decile bins and missing shares of {len(features)} features "
        f"on the {rows} rows"
        + (" and of the score on the validation rows." if SCORE_KEY in reference else "."),
        f"Monitoring compares a scored population with it by PSI (watch at {p.psi_watch}, "
        f"act at {p.psi_act}; {p.version}).",
    ]
    score = reference.get(SCORE_KEY)
    if score and score.get("deciles"):
        deciles = ", ".join(f"{d:.3f}" for d in score["deciles"])
        lines.append(f"Score deciles (0 %, 10 %, …, 100 %): {deciles}.")
    mostly_missing = sorted(k for k in features if reference[k].get("missing_share", 0) > 0.5)
    if mostly_missing:
        lines.append(f"Missing for more than half of those rows: {', '.join(mostly_missing)}.")
    return lines


def model_card(source: Path | str | Bundle | Mapping[str, Any]) -> str:
    """The Markdown model card of a bundle folder, a loaded bundle, or its metadata alone.

    With metadata alone the drift reference and policies are absent and say so.
    """
    metadata, reference, policies, version = _sources(source)
    label = metadata.get("label", {})
    horizon, dpd = label.get("horizon_days", "?"), label.get("dpd_threshold", "?")
    dates = metadata.get("split_dates", {})
    rows = metadata.get("rows", {})
    risk, bnpl = policies.get("risk", {}), policies.get("bnpl", {})
    metrics = metadata.get("metrics", {})
    simulated = "oracle" in metadata.get("out_of_time_metrics", {})
    names = {f.name for f in FEATURES}
    direction = {1: "more never lowers the risk", -1: "more never raises the risk", 0: ""}

    out = [
        f"# Model card: {version}",
        "",
        f"Early-warning risk model of tijdig. Trained {metadata.get('trained_at', '?')}; "
        f"feature set {metadata.get('feature_set_version', '?')}; data fingerprint "
        f"`{metadata.get('data_fingerprint', '?')}`; MLflow run `{metadata.get('run_id', '–')}`; "
        f"risk policy {risk.get('version', '–')}, pay-later policy {bnpl.get('version', '–')}.",
        "",
        "## Intended use and users",
        "",
        f"The calibrated probability that a private customer gets into payment difficulty "
        f"(an invoice {dpd} or more days past due) within {horizon} days, with its reasons, "
        "so that a creditor offers help early: a friendly message, a personal call, a "
        "payment plan they can keep, or a referral to debt help (social collection). Used by "
        "collection staff and their systems through the API, and by the pay-later check as "
        "one input among the policy's rules. Credit scoring of natural persons: high-risk "
        "under the AI Act (Annex III 5(b)).",
        "",
        "## Uses it is not meant for",
        "",
        "- Deciding alone, without the human-review path, to refuse credit, end a contract "
        "or start enforcement.",
        "- Raising costs, charges or pressure on customers it flags: the policy turns risk "
        "into help, not escalation.",
        "- Customers outside the population it was trained on (known to the creditor for "
        "less than 90 days, or already in difficulty), businesses, or other creditors' data "
        "without retraining and a new out-of-time evaluation.",
        "- Employment, insurance pricing, or any decision about a person other than this "
        "creditor's collection and pay-later.",
        "",
        "## Data and period",
        "",
        f"Snapshots of every eligible customer at monthly dates; label: an invoice reaching "
        f"{dpd} days past due within {horizon} days after the date.",
        "",
        "| segment | dates | rows |",
        "|---|---|---:|",
        *(
            f"| {seg} | {_period(dates.get(seg))} | {rows.get(seg, '?')} |"
            for seg in ("train", "calibration", "validation")
        ),
        "",
        "## Features",
        "",
        f"{len(names)} features from the customer's own payment, collection, income and "
        "balance events, computed point in time by one definition online and offline "
        "(`features/build.py`). No special-category data (GDPR art. 9), no social-media or "
        "health data. Age band and household type are features and the fairness groups.",
        "",
        "| feature | meaning | constraint |",
        "|---|---|---|",
        *(f"| {f.name} | {f.description} | {direction[f.monotone]} |" for f in FEATURES),
        "",
        "## Out-of-time metrics against the baselines",
        "",
        *_metrics_section(metadata),
        "",
        "## Calibration",
        "",
        "Platt scaling on the booster's log-odds, fitted on the calibration dates (monotone: "
        f"the ranking is kept). Validation ECE {_fmt(metrics.get('ece', '–'))} (ten "
        f"equal-width bins), Brier {_fmt(metrics.get('brier', '–'))}, observed rate "
        f"{_fmt(metrics.get('base_rate', '–'))}. The promotion gate refuses a version above its "
        f"ECE limit; monitoring alerts when a matured monthly cohort's ECE exceeds "
        f"{outcome_policy().max_ece} ({outcome_policy().version}).",
        "",
        "## Fairness",
        "",
        *_fairness_section(metadata),
        "",
        "## Drift reference",
        "",
        *_drift_section(reference, metadata),
        "",
        "## Limitations",
        "",
        (
            "- Trained and evaluated on the simulator's population "
            "(`training/simulation/`): behaviour, incomes and shocks are simulated, so these "
            "figures say how the method works, not how a real portfolio will score. A real "
            "deployment retrains on its own events and re-reads this card."
            if simulated
            else "- Trained on the event store's own data; figures hold for that creditor's "
            "population and period only."
        ),
        "- Outcomes are observed only where the creditor acted as it did: help offered "
        "because of a flag changes the outcome the next model learns from.",
        "- Fairness groups are age band and household type only; other protected "
        "characteristics are not recorded and cannot be examined. Small groups are noisy.",
        "- Income and balance features are missing for customers who share no bank data; "
        "the model falls back on payment history for them.",
        "",
        "## Where the obligations are met",
        "",
        "| law | article | obligation | where in tijdig |",
        "|---|---|---|---|",
        *(f"| {law} | {art} | {what} | {where} |" for law, art, what, where in OBLIGATIONS),
    ]
    return "\n".join(out) + "\n"

"""Monitoring a deployed risk model (AI Act art. 26): drift, matured outcomes, fairness.

Each module has plain functions returning data plus a Markdown rendering, for the CLI
and for the model card: :mod:`.drift` (PSI per feature and for the score),
:mod:`.outcomes` (ROC AUC, PR AUC, ECE per monthly cohort once labels have matured),
:mod:`.fairness` (rates, calibration and error rates per age band and household type,
and the promotion gate's bounds). Thresholds live in :mod:`.policy`'s versioned JSON.
"""

"""What training prints is true and worth reading: counts as whole numbers, no baseline
that ranks nothing, no warnings a user cannot act on."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from cli.models import metric_text
from features.io import read_event_dir, write_event_dir
from training.registry import QUIETENED_MLFLOW_WARNINGS, _quiet_mlflow_model_warnings
from training.train import constant_score_reason


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("rows", 0.0, "0"),
        ("rows", 1347.0, "1,347"),
        ("informative", 1.0, "1"),
        ("roc_auc", 1.0, "1.0000"),
        ("kept_rate", 0.40625, "0.4062"),
    ],
)
def test_counts_print_whole_and_scores_to_four_decimals(name, value, text) -> None:
    assert metric_text(name, value) == text


def test_a_rule_that_flags_nobody_or_everybody_is_no_baseline() -> None:
    letter = "had a 14-day letter open"
    assert constant_score_reason(np.zeros(5), letter) == (
        "no validation customer had a 14-day letter open, so the rule ranks nothing"
    )
    assert constant_score_reason(np.ones(5), letter).startswith("every validation customer")
    assert constant_score_reason(np.array([0.0, 1.0, 0.0]), letter) is None


def test_ingest_reads_past_the_labels_it_was_given_and_warns_of_other_files(
    population, tmp_path
) -> None:
    write_event_dir({n: df.head(0) for n, df in population.tables.items()}, tmp_path, fmt="parquet")
    pd.DataFrame({"customer_id": [], "as_of": [], "label": []}).to_parquet(
        tmp_path / "labels.parquet"
    )
    (tmp_path / "labels.json").write_text('{"horizon_days": 30}')
    (tmp_path / "notes.txt").write_text("x")
    warnings = read_event_dir(tmp_path).warnings
    assert len(warnings) == 1 and warnings[0].startswith("notes.txt: ignored, not an event table")


def test_only_mlflows_model_logging_warnings_are_quietened(caplog) -> None:
    logger = logging.getLogger("mlflow.pyfunc")
    with caplog.at_level(logging.WARNING, logger="mlflow.pyfunc"), _quiet_mlflow_model_warnings():
        for message in QUIETENED_MLFLOW_WARNINGS:
            logger.warning(message + " and more")
        logger.warning("Failed to save the model: disk full")
    assert [r.getMessage() for r in caplog.records] == ["Failed to save the model: disk full"]
    with caplog.at_level(logging.WARNING, logger="mlflow.pyfunc"):
        logger.warning(QUIETENED_MLFLOW_WARNINGS[0])  # outside log_model: heard
    assert caplog.records[-1].getMessage() == QUIETENED_MLFLOW_WARNINGS[0]

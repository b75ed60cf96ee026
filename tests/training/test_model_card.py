"""The model card: every section, from a bundle folder, a bundle or its metadata."""

from __future__ import annotations

import pytest

from models.bundle import Bundle
from training.model_card import OBLIGATIONS, model_card

SECTIONS = (
    "## Intended use and users",
    "## Uses it is not meant for",
    "## Data and period",
    "## Features",
    "## Out-of-time metrics against the baselines",
    "## Calibration",
    "## Fairness",
    "## Drift reference",
    "## Limitations",
    "## Where the obligations are met",
)


def test_the_card_of_a_bundle_folder_has_every_section_in_order(bundle_dir):
    card = model_card(bundle_dir)
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert card.startswith("# Model card: ")


def test_the_card_holds_the_figures_of_the_bundle(bundle_dir, trained):
    card = model_card(bundle_dir)
    meta = trained.bundle.metadata
    for baseline in ("model", "logistic_regression", "rule_second_reminder", "oracle"):
        assert f"| {baseline} | " in card
    assert f"{meta['metrics']['roc_auc']:.4f}" in card
    assert meta["data_fingerprint"] in card
    validation = meta["split_dates"]["validation"]
    assert f"| validation | {validation[0]} – {validation[-1]} ({len(validation)} dates) |" in card
    assert "**age band**" in card and "**household type**" in card
    assert "Score deciles" in card  # the drift reference
    assert "simulator's population" in card  # the oracle says it was simulated
    assert "| late_invoices_90d |" in card


@pytest.mark.parametrize(("law", "article"), [(law, art) for law, art, _, _ in OBLIGATIONS])
def test_every_obligation_has_a_place(bundle_dir, law, article):
    assert f"| {law} | {article} |" in model_card(bundle_dir)


def test_the_articles_asked_for_are_all_there():
    articles = {(law, art) for law, art, _, _ in OBLIGATIONS}
    wanted = {("AI Act", f"art. {n}") for n in (9, 10, 11, 12, 13, 14, 15, 26, 86)}
    wanted |= {("CCD2", f"art. {n}") for n in (18, 35, 36)}
    assert wanted <= articles


def test_a_loaded_bundle_and_bare_metadata_give_a_card(bundle_dir, trained):
    bundle = Bundle.load(bundle_dir, version="tijdig-risk/7")
    assert model_card(bundle).startswith("# Model card: tijdig-risk/7")
    bare = model_card({k: v for k, v in trained.bundle.metadata.items() if k != "fairness"})
    assert "No drift reference" in bare and "No fairness table" in bare


def test_a_folder_without_metadata_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a bundle folder"):
        model_card(tmp_path)

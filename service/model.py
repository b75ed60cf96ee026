"""Loading a bundle for serving: fully, checked, before anyone sees it.

Used at start-up and by ``POST /admin/reload``. A bundle is served only when it loaded
completely, passed its own self-check, computes the service's feature list in the same
order, and answered an explained prediction. Anything else is a :class:`BundleError` and
the caller keeps what it had.
"""

from __future__ import annotations

import numpy as np

from features.build import FEATURE_NAMES
from models.bundle import Bundle, BundleError, load_bundle


def load_checked_bundle(uri: str, tracking_uri: str | None = None) -> Bundle:
    """Load ``uri`` (MLflow URI or local folder) and check it can serve this service."""
    try:
        bundle = load_bundle(uri, tracking_uri)
    except BundleError:
        raise
    except Exception as exc:  # MLflow, LightGBM or I/O errors all mean "not usable"
        raise BundleError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
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
    return bundle

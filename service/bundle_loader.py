"""Loading a bundle for serving: fully, checked, before anyone sees it.

Used at start-up and by ``POST /admin/reload``. A bundle is served only when it loaded
completely, passed its own self-check, computes the service's feature list in the same
order, and answered an explained prediction. Anything else is a :class:`BundleError` and
the caller keeps what it had.
"""

from __future__ import annotations

from models.bundle import Bundle, BundleError, check_servable, load_bundle


def load_checked_bundle(uri: str, tracking_uri: str | None = None) -> Bundle:
    """Load ``uri`` (MLflow URI or local folder) and check it can serve this service."""
    try:
        bundle = load_bundle(uri, tracking_uri)
    except BundleError:
        raise
    except Exception as exc:  # MLflow, LightGBM or I/O errors all mean "not usable"
        raise BundleError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    check_servable(bundle)
    return bundle

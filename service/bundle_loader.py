"""Loading a bundle for serving: fully, checked, before anyone sees it.

Used at start-up and by ``POST /admin/reload``. A bundle is served only when its files
match their manifest (``models.bundle.verify_manifest``), it parsed in a child process,
loaded completely here, passed its own self-check, computes the service's feature list
in the same order, and answered an explained prediction. Anything else is a
:class:`BundleError` and the caller keeps what it had.

Why a child process: LightGBM ends the process on some malformed model files (a
truncated ``booster.txt`` aborts with SIGABRT) before any ``except`` can run. The child
takes that blow; the worker and its in-flight requests never do. The verdict is kept per
content digest, so a bundle already parsed in this process is not parsed twice.

Run as ``python -m service.bundle_loader <folder>``, this module is that child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from models.bundle import (
    Bundle,
    BundleError,
    check_servable,
    content_digest,
    resolve_bundle,
    verify_manifest,
)

DEFAULT_PARSE_TIMEOUT_S = 120.0
_PARSING = "parsing "
_REFUSED = "refused "
_PASSED = "passed"

_parsed_digests: set[str] = set()  # content digests of bundles that parsed in a child
_parsed_lock = threading.Lock()


def load_checked_bundle(
    uri: str, tracking_uri: str | None = None, *, parse_timeout_s: float = DEFAULT_PARSE_TIMEOUT_S
) -> Bundle:
    """Load ``uri`` (MLflow URI or local folder) and check it can serve this service;
    the bundle is parsed in a child process (at most ``parse_timeout_s`` seconds) before
    it is loaded here."""
    try:
        folder, version = resolve_bundle(uri, tracking_uri)
        if verify_manifest(folder) is None:
            import structlog

            structlog.get_logger("tijdig.service").warning(
                "bundle_without_manifest", model_uri=uri, checked="parse only"
            )
        parse_in_child(folder, parse_timeout_s)
        bundle = Bundle.load(folder, version=version)
    except BundleError:
        raise
    except Exception as exc:  # MLflow, LightGBM or I/O errors all mean "not usable"
        raise BundleError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    check_servable(bundle)
    return bundle


def parse_in_child(folder: Path, timeout_s: float = DEFAULT_PARSE_TIMEOUT_S) -> None:
    """Parse the bundle at ``folder`` in a child process; :class:`BundleError` naming the
    file when the child refuses it, dies on it or takes longer than ``timeout_s``."""
    digest = content_digest(folder)
    with _parsed_lock:
        if digest in _parsed_digests:
            return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "service.bundle_loader", str(folder)],
            capture_output=True,
            timeout=timeout_s,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,  # so the child imports this tijdig
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BundleError(
            f"bundle at {folder}: parsing {_last_file(exc.stdout) or 'it'} took longer "
            f"than {timeout_s:g} s",
            file=_last_file(exc.stdout),
        ) from exc
    stdout = done.stdout.decode("utf-8", errors="replace")
    stderr = done.stderr.decode("utf-8", errors="replace")  # a parser's last words may be bytes
    if done.returncode == 0 and stdout.rstrip().endswith(_PASSED):
        with _parsed_lock:
            _parsed_digests.add(digest)
        return
    refused = [line for line in stdout.splitlines() if line.startswith(_REFUSED)]
    file = _last_file(stdout)
    file = None if file == "bundle" else file
    if refused:
        raise BundleError(refused[-1].removeprefix(_REFUSED), file=file)
    raise BundleError(
        f"bundle at {folder}: {file or 'a file'} could not be parsed: the parser ended its "
        f"process ({_exit_name(done.returncode)}){_fatal_line(stderr)}",
        file=file,
    )


def _last_file(stdout: str | bytes | None) -> str | None:
    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout or ""
    files = [line.removeprefix(_PARSING) for line in text.splitlines() if line.startswith(_PARSING)]
    return files[-1] if files else None


def _exit_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _fatal_line(stderr: str) -> str:
    fatal = [line.strip() for line in stderr.splitlines() if "[Fatal]" in line]
    return f": {fatal[-1]}" if fatal else ""


def _child(folder: Path) -> int:
    """The child's work: every LightGBM file on its own (each announced first, so a
    parser that kills the process leaves its name behind), then the whole bundle."""
    import lightgbm as lgb

    current = "bundle"
    try:
        for model_file in sorted(folder.rglob("booster.txt")):
            current = model_file.relative_to(folder).as_posix()
            _say(_PARSING + current)
            lgb.Booster(model_file=str(model_file))
        current = "bundle"
        _say(_PARSING + current)
        Bundle.load(folder)
    except BundleError as exc:
        _say(_REFUSED + str(exc))
        return 2
    except Exception as exc:
        message = f"bundle at {folder}: {current} cannot be read: {type(exc).__name__}: {exc}"
        _say(_REFUSED + message)
        return 2
    _say(_PASSED)
    return 0


def _say(line: str) -> None:
    """One line to the parent, written at once (the next call may end the process)."""
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def public_reason(exc: BaseException) -> str:
    """Why a bundle is not served, fit for an unauthenticated reader (``/readyz``): the
    bundle file at fault, never a path, a host or a driver's message."""
    file = getattr(exc, "file", None)
    if file:
        return f"the bundle was refused: {file} is corrupt, truncated or altered"
    if isinstance(exc, BundleError):
        return "the bundle could not be loaded (see the service log)"
    return f"the bundle could not be loaded ({type(exc).__name__}; see the service log)"


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))

"""Which step failures deserve a retry, and what a failed step says.

Data and config errors fail the same way every time: retrying them only buries the message
under repeated logs, so they fail the step at once (``Failure(allow_retries=False)``).
Transient errors (a database connection dropped, a network file system hiccup) propagate
unchanged, and the jobs' retry policy tries the step again.

What a failure says: the project's own errors (``ConfigError``, ``SourceError``...) are written
to name files, records and keys, never values, and are shown as they are. Another library's
message can quote data (a parse error shows the cell): in a stage that holds raw PII it is
replaced by the exception type and where it was raised.
"""

from __future__ import annotations

import contextlib
import re
import traceback
from collections.abc import Iterator

from dagster import Failure

# Messages of database errors that are about the query or schema, not the connection.
_PERMANENT_DB = re.compile(r"no such (table|column)|syntax error|does not exist|permission denied",
                           re.IGNORECASE)
# File errors that a retry cannot fix: the path or its permissions are wrong.
_PERMANENT_OS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass on a second try: a connection or I/O error anywhere in the
    exception's chain (also a context suppressed with ``raise ... from None``)."""
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        sa_exc = None
    for err in _chain(exc):
        if sa_exc is not None:
            if isinstance(err, sa_exc.DisconnectionError | sa_exc.TimeoutError):
                return True
            if isinstance(err, sa_exc.OperationalError | sa_exc.InterfaceError):
                return not _PERMANENT_DB.search(str(err.orig or err))
        if isinstance(err, ConnectionError | TimeoutError):
            return True
        if isinstance(err, OSError) and not isinstance(err, _PERMANENT_OS):
            return True
    return False


def _own_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("ftdata_pipeline")


def failure_message(exc: BaseException, *, restricted: bool) -> str:
    if _own_error(exc) or not restricted:
        text = str(exc).strip() or "(no message)"
        return f"{type(exc).__name__}: {text}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "ftdata_pipeline" in f.filename]
    where = f" in {frames[-1].name} ({frames[-1].filename.rsplit('ftdata_pipeline', 1)[-1].lstrip('/')}:{frames[-1].lineno})" if frames else ""
    return (f"{type(exc).__name__}{where}; message withheld: this stage holds raw PII "
            f"(reproduce with the same data outside Dagster to see it)")


@contextlib.contextmanager
def step_errors(*, restricted: bool) -> Iterator[None]:
    """Turn a permanent error into a non-retried Dagster failure with a readable message."""
    try:
        yield
    except Failure:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        message = failure_message(exc, restricted=restricted)
        if restricted and not _own_error(exc):
            raise Failure(description=message, allow_retries=False) from None
        raise Failure(description=message, allow_retries=False) from exc

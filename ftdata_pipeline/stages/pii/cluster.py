"""Fan-out of one step's PII detection over a Dask cluster.

A deployment that sets ``FTDATA_PII_DASK_SCHEDULER`` to a Dask scheduler's address
(``tcp://host:8786``) has every large ``detect_spans`` call send its chunks of texts to that
cluster through ``distributed.Client`` instead of the local process pool: one big redacted step
then uses every worker of the cluster. This is not Dagster's step-level Dask executor
(``FTDATA_EXECUTOR=dask``, ``orchestration/executors.py``), which places whole steps on Dask
workers; the two can be used together or apart.

- Distribution, retries and worker loss are Dask's; this module only submits chunks, keeps a
  bounded number of them in flight (``IN_FLIGHT_PER_THREAD`` per worker thread) and hands the
  results back in input order, so the spans are those of an in-process run.
- Each Dask worker process builds its ``Detector`` once per detection config (``_detector``,
  cached by the config's JSON, which holds no key material) and keeps it for later chunks and
  steps.
- The client belongs to the step: inside ``engine.worker_pools()`` one client per address is
  opened on first use and closed when the block ends (its unfinished tasks are then released
  on the cluster); outside such a block a call opens and closes its own.
- Workers need the project and the spaCy model installed (the same versions as the step's
  process), nothing else: texts and configs travel with the tasks.

Texts are sent to the cluster's workers, so they must be as trusted as the step's own machine
(the restricted zone); task keys name only the call and chunk offsets, never a text.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import polars as pl

from ftdata_pipeline.stages.pii.span_frames import shifted, span_frame, submit_ahead

SCHEDULER_ENV = "FTDATA_PII_DASK_SCHEDULER"
SCHEMES = ("tcp", "tls", "ws", "wss")
CONNECT_TIMEOUT_S = 20
IN_FLIGHT_PER_THREAD = 2


class PiiClusterError(RuntimeError):
    """The PII Dask cluster variable is malformed or its scheduler cannot be reached; the
    message names the variable."""


def scheduler_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The scheduler address in ``FTDATA_PII_DASK_SCHEDULER``, or None when unset or empty.

    A value that is not ``scheme://host:port`` (scheme one of tcp, tls, ws, wss) is an error
    naming the variable.
    """
    env = os.environ if environ is None else environ
    raw = env.get(SCHEDULER_ENV, "")
    address = raw.strip()
    if not address:
        return None
    problem = _address_problem(address)
    if problem:
        raise PiiClusterError(
            f"{SCHEDULER_ENV}={raw!r}: {problem}; expected the Dask scheduler's address as "
            f"scheme://host:port with scheme one of {', '.join(SCHEMES)} "
            "(e.g. tcp://dask.internal:8786), or unset it to use the local process pool"
        )
    return address


def _address_problem(address: str) -> str | None:
    parts = urlsplit(address)
    if parts.scheme not in SCHEMES or "://" not in address:
        return "no or unknown scheme"
    try:
        port = parts.port
    except ValueError:
        return "the port is not a number from 1 to 65535"
    if not parts.hostname:
        return "no host"
    if port is None or port == 0:
        return "no port"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return "only scheme://host:port is allowed"
    return None


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------

_ANALYZED = {"chunks": 0, "texts": 0}


@functools.lru_cache(maxsize=4)
def _detector(cfg_json: str):
    from ftdata_pipeline.config.models import RedactConfig
    from ftdata_pipeline.stages.pii.engine import Detector

    return Detector(RedactConfig.model_validate_json(cfg_json))


# A worker process analyzes one chunk at a time whatever its number of threads: the detector
# keeps per-batch state (custom recognizers' primed matches, the sentence NER memo) and spaCy
# inference holds the GIL; cores are used by running a worker process per core.
_ONE_AT_A_TIME = threading.Lock()


def analyze_chunk(cfg_json: str, texts: list[str]) -> pl.DataFrame:
    """Run on a Dask worker: the span frame of one chunk (text indices from 0)."""
    with _ONE_AT_A_TIME:
        frame = span_frame(_detector(cfg_json).spans(texts))
        _ANALYZED["chunks"] += 1
        _ANALYZED["texts"] += len(texts)
    return frame


def worker_stats() -> dict[str, int]:
    """Chunks and texts this process has analyzed for the cluster (``Client.run`` reads it)."""
    return {"pid": os.getpid(), **_ANALYZED}


# --------------------------------------------------------------------------------------------
# the client side
# --------------------------------------------------------------------------------------------

_CLIENTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "ftdata_pii_dask_clients", default=None
)


def _connect(address: str):
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PiiClusterError(
            f"{SCHEDULER_ENV}={address!r}: cannot connect to a Dask scheduler there within "
            f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}: {exc}); start the scheduler, fix "
            "the address, or unset the variable to use the local process pool"
        ) from exc


@contextlib.contextmanager
def client_scope() -> Iterator[None]:
    """Clients opened inside are reused until the block ends, then closed (nested blocks
    share the outermost one's)."""
    if _CLIENTS.get() is not None:
        yield
        return
    clients: dict = {}
    token = _CLIENTS.set(clients)
    try:
        yield
    finally:
        _CLIENTS.reset(token)
        for client in clients.values():
            client.close()
        clients.clear()


@contextlib.contextmanager
def _client(address: str):
    clients = _CLIENTS.get()
    if clients is None:
        client = _connect(address)
        try:
            yield client
        finally:
            client.close()
        return
    if address not in clients:
        clients[address] = _connect(address)
    yield clients[address]


def span_frames(
    address: str, cfg_json: str, chunks: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, int, pl.DataFrame]]:
    """(offset, number of texts, span frame) of ``chunks`` ((offset, texts) pairs) analyzed on the cluster, in input
    order, with at most ``IN_FLIGHT_PER_THREAD`` chunks per worker thread in flight."""
    with _client(address) as client:
        threads = sum(client.nthreads().values())
        window = max(4, threads * IN_FLIGHT_PER_THREAD)
        call = uuid.uuid4().hex[:12]
        pending: deque[list] = deque()

        def submit(offset: int, texts: list[str]):
            return client.submit(analyze_chunk, cfg_json, texts,
                                 key=f"ftdata-pii-spans-{call}-{offset}", retries=1)

        try:
            submit_ahead(pending, chunks, submit, window)
            while pending:
                offset, texts, future, _ = pending.popleft()
                frame = future.result()
                future.release()
                yield offset, len(texts), shifted(frame, offset)
                submit_ahead(pending, chunks, submit, window)
        finally:
            for _, _, future, _ in pending:  # an error or a closed generator: drop the rest
                future.cancel()

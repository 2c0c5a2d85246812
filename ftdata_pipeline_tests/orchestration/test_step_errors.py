"""Failed steps say why; data and config errors are not retried, connection errors are."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, Failure

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.loader import ConfigError
from ftdata_pipeline.orchestration.errors import failure_message, is_transient, step_errors
from ftdata_pipeline.stages.raw import SourceError

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connection_refused() -> BaseException:
    engine = sa.create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none")
    try:
        engine.connect()
    except sa.exc.OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("connected to a closed port")


def test_transient_and_permanent_errors_are_told_apart():
    refused = _connection_refused()
    assert is_transient(refused)
    # the source reader re-raises it as a SourceError "from None": the context still counts
    try:
        try:
            raise refused
        except sa.exc.OperationalError:
            raise SourceError("source 'x': query failed on $URL: connection refused") from None
    except SourceError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(OSError(5, "Input/output error"))
    assert not is_transient(FileNotFoundError("demo_data/missing.jsonl"))
    assert not is_transient(SourceError("source 'x': file not found: y"))
    assert not is_transient(ConfigError("a.yaml: curate.min_words: bad"))
    assert not is_transient(ValueError("could not parse"))
    no_table = sa.exc.OperationalError("SELECT", {}, Exception("no such table: chat_turns"))
    assert not is_transient(no_table)


def test_permanent_errors_fail_without_retry_and_hide_foreign_messages_in_restricted_stages():
    with pytest.raises(Failure) as own:
        with step_errors(restricted=True):
            raise SourceError("source 'tickets': line 3: not valid JSON")
    assert own.value.allow_retries is False
    assert own.value.description == "SourceError: source 'tickets': line 3: not valid JSON"

    with pytest.raises(Failure) as foreign:
        with step_errors(restricted=True):
            raise ValueError("could not parse 'ann@example.com' as a date")
    assert "ann@example.com" not in foreign.value.description
    assert foreign.value.description.startswith("ValueError in ")
    assert foreign.value.__cause__ is None and foreign.value.__suppress_context__

    assert "ann@x" in failure_message(ValueError("bad ann@x"), restricted=False)
    with pytest.raises(OSError):  # transient: left to the retry policy
        with step_errors(restricted=True):
            raise OSError(5, "Input/output error")


def _project(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "demo_data", root / "demo_data")
    for name in ("support_corpus", "response_preferences", "ticket_intents"):
        (root / "configs" / "datasets" / f"{name}.yaml").unlink()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FTDATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(root))
    return root


def _step_events(home: str, step: str) -> list[str]:
    with DagsterInstance.from_config(home) as instance:
        (run,) = instance.get_runs()
        return [
            r.dagster_event.event_type_value
            for r in instance.all_logs(run.run_id)
            if r.dagster_event is not None and r.step_key == step
        ]


@pytest.mark.integration
def test_failed_materialize_prints_the_error_and_retries_only_connection_errors(
    tmp_path, monkeypatch, capsys
):
    root = _project(tmp_path, monkeypatch)
    (root / "demo_data" / "support_tickets.jsonl").unlink()  # a data/config error
    monkeypatch.setenv(
        "FTDATA_CHAT_DB_URL", f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/chat"
    )  # a connection error
    configs = str(root / "configs")
    assert main(["--config-dir", configs, "materialize", "--dataset", "support_assistant"]) == 1
    out = capsys.readouterr().out
    assert "step failed: raw__support_tickets" in out
    assert "SourceError: source 'support_tickets': file not found:" in out
    assert "step failed: raw__chat_transcripts" in out
    assert "query failed" in out and "Connection refused" in out
    home = str(tmp_path / "dagster_home")
    tickets = _step_events(home, "raw__support_tickets")
    assert "STEP_FAILURE" in tickets and "STEP_UP_FOR_RETRY" not in tickets
    chat = _step_events(home, "raw__chat_transcripts")
    assert chat.count("STEP_UP_FOR_RETRY") == 1 and "STEP_FAILURE" in chat

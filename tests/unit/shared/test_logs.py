"""Log lines are JSON and carry the service, and the event and episode being handled."""

import json
import logging
from collections.abc import Iterator

import pytest

from shared.logs import configure_logging, log_context


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_lines_are_json_with_event_and_episode_while_handling(capsys):
    configure_logging("intake")
    logger = logging.getLogger("intake.handlers")
    with log_context(event_id="ev-1", episode_id="ep-1"):
        logger.info("handled %s", "mfc.episode.reported")
    logger.warning("between messages")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["message"] == "handled mfc.episode.reported"
    assert (first["service"], first["event_id"], first["episode_id"]) == (
        "intake",
        "ev-1",
        "ep-1",
    )
    assert first["level"] == "INFO"
    assert (second["event_id"], second["episode_id"]) == (None, None)

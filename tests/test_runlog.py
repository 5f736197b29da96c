"""Rule logging: messages, errors and Python warnings of a rule script reach its log file."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

import pytest

from cytotrial.steps.runlog import rule_logging


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    warning_handlers = logging.getLogger("py.warnings").handlers[:]
    yield
    logging.captureWarnings(False)
    root.handlers[:], root.level = handlers, level
    logging.getLogger("py.warnings").handlers[:] = warning_handlers


def test_a_warning_goes_to_the_rule_log_and_stderr(tmp_path, capsys, restored_logging):
    log_file = tmp_path / "rule.log"
    with rule_logging(SimpleNamespace(log=[str(log_file)], rule="derive_responses")) as log:
        log.info("counted")
        warnings.warn("bleeding is not recorded for patient P1", UserWarning, stacklevel=1)
    text = log_file.read_text()
    assert "INFO cytotrial.rule.derive_responses: counted" in text
    assert "WARNING py.warnings" in text and "bleeding is not recorded for patient P1" in text
    assert "bleeding is not recorded for patient P1" in capsys.readouterr().err


def test_the_log_gives_the_job_start_up_and_its_cpu(tmp_path, restored_logging):
    log_file = tmp_path / "rule.log"
    with rule_logging(SimpleNamespace(log=[str(log_file)], rule="merge_mfi")) as log:
        log.info("merged")
    lines = log_file.read_text().splitlines()
    startup = float(lines[0].split("start-up: ")[1].split(" s CPU")[0])
    total = float(lines[-1].split("done: ")[1].split(" s CPU")[0])
    assert "merged" in lines[1] and 0 < startup <= total  # this process's imports came before, its CPU after

"""Logging for rule scripts: everything, including a failure's traceback, goes to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys


@contextlib.contextmanager
def rule_logging(smk):
    """Send logging of a Snakemake rule script to ``smk.log[0]``; log and re-raise any error.

    Errors of the project's own kinds (ValueError and subclasses, FileNotFoundError) are written as their
    message alone; anything else with its traceback. Python warnings (e.g. a platelet table without bleeding
    records) go to the log file and, as without this, to stderr.
    """
    handler = logging.FileHandler(smk.log[0], mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [logging.StreamHandler(sys.stderr)]
    log = logging.getLogger(f"cytotrial.rule.{smk.rule}")
    try:
        yield log
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        print(f"cytotrial: {err}", file=sys.stderr)
        raise
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise

"""What flowio and flowkit, readers independent of ours, make of an FCS file: events and TEXT keywords.

``reference_reading(path)`` returns, per reader, either ('read', events, keywords) or ('refuses', 'Type: message').
``compare_with_references(path, sample, expect)`` checks our reading against both: by default each must read the
file to the same events (scaled by $PnG/$PnE/$TIMESTEP, as ``get_events(source='raw')``) and the same value of
every keyword both report; ``expect`` names the reader that refuses or reads otherwise, with the reason, and the
check then asserts that this is still so (a reason that stopped being true fails).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flowio
import flowkit as fk
import numpy as np


def _flowio(path: Path):
    data = flowio.FlowData(str(path))
    return data.as_array(preprocess=True), dict(data.text)


def _flowkit(path: Path):
    sample = fk.Sample(str(path), subsample=0)
    return sample.get_events(source="raw"), dict(sample.metadata)


READERS = {"flowio": _flowio, "flowkit": _flowkit}


def reference_reading(path: str | Path) -> dict[str, tuple]:
    """reader -> ('read', events, keywords) or ('refuses', 'ExceptionType: message')."""
    out = {}
    for name, reader in READERS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                events, keywords = reader(Path(path))
            out[name] = ("read", np.asarray(events, dtype=float), keywords)
        except Exception as err:  # noqa: BLE001 - any refusal
            out[name] = ("refuses", f"{type(err).__name__}: {err}")
    return out


def differences(events: np.ndarray, keywords: dict, reference: tuple) -> list[str]:
    """How our events and keywords differ from one reader's ('read', events, keywords); [] when the same."""
    _, their_events, their_keywords = reference
    found = []
    if events.shape != their_events.shape:
        found.append(f"events {events.shape} vs {their_events.shape}")
    elif not np.allclose(events, their_events, rtol=1e-12, atol=0, equal_nan=True):
        bad = np.argwhere(~np.isclose(events, their_events, rtol=1e-12, atol=0, equal_nan=True))
        i, j = bad[0]
        found.append(f"{len(bad)} event values, first [{i}, {j}]: ours {events[i, j]!r}, theirs {their_events[i, j]!r}")
    shared = sorted(set(keywords) & set(their_keywords))
    found += [f"keyword {k}: ours {keywords[k]!r}, theirs {their_keywords[k]!r}" for k in shared
              if str(keywords[k]) != str(their_keywords[k])]
    return found


def compare_with_references(path, sample, expect: dict[str, str] | None = None) -> dict[str, str]:
    """Check our flowkit Sample of ``path`` against flowio and flowkit; returns reader -> outcome.

    ``expect``: reader -> 'refuses: <reason>' (the reader must refuse the file) or 'differs: <reason>' (it reads
    the file but its events or keywords differ from ours, for that reason); readers not named must read the file
    as we do.
    """
    expect = expect or {}
    events, keywords = sample.get_events(source="raw"), dict(sample.metadata)
    outcome = {}
    for reader, reading in reference_reading(path).items():
        expected = expect.get(reader, "same")
        if reading[0] == "refuses":
            assert expected.startswith("refuses"), f"{reader} refuses {Path(path).name}: {reading[1]}"
            outcome[reader] = f"refuses ({reading[1][:80]})"
            continue
        assert not expected.startswith("refuses"), f"{reader} now reads {Path(path).name} ({expected})"
        found = differences(events, keywords, reading)
        if expected == "same":
            assert not found, f"{reader} reads {Path(path).name} otherwise: {found}"
        else:
            assert found, f"{reader} now reads {Path(path).name} as we do ({expected})"
        outcome[reader] = "same" if not found else f"differs ({found[0][:80]})"
    return outcome

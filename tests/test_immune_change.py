"""The immune-change table, on a hand-worked example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytotrial.stats.immune_change import immune_change_table


def _rows(values):
    return pd.DataFrame([{"patient_id": p, "visit": v, "population": "Treg", "denominator": "CD4",
                          "percent_of": x} for p, v, x in values])


def test_hand_worked_medians_and_changes():
    table = immune_change_table(_rows([
        ("P1", "D0", 2.0), ("P1", "W4", 3.0),
        ("P2", "D0", 4.0), ("P2", "W4", 6.0),
        ("P3", "D0", 5.0), ("P3", "W4", 4.0),
        ("P4", "W4", 9.0),  # no baseline: counts at W4, not in the paired change
        ("P5", "D0", 0.0), ("P5", "W4", 1.0),  # baseline 0: in the change, not in the % change
    ]), ["D0", "W2", "W4"], "D0").set_index("visit")
    assert list(table.index) == ["D0", "W4"]  # W2 has no sample at all
    w4 = table.loc["W4"]
    assert w4["n"] == 5 and w4["median"] == 4.0 and w4["q1"] == 3.0 and w4["q3"] == 6.0
    assert w4["n_paired"] == 4
    assert w4["median_change"] == pytest.approx(1.0)  # changes 1, 2, -1, 1
    assert w4["median_percent_change"] == pytest.approx(50.0)  # 50, 50, -20
    assert table.loc["D0", "median_change"] == 0


def test_missing_values_are_left_out():
    table = immune_change_table(_rows([("P1", "D0", 2.0), ("P1", "W4", np.nan), ("P2", "D0", 4.0),
                                       ("P2", "W4", 5.0)]), ["D0", "W4"], "D0").set_index("visit")
    assert table.loc["W4", "n"] == 1 and table.loc["W4", "n_paired"] == 1
    assert table.loc["W4", "median_change"] == 1.0

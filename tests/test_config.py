"""The run's configuration: the project's settings over the defaults, and short errors naming key and values."""

from __future__ import annotations

import pytest
import yaml

from cytotrial.config import ConfigError, complete_config, deep_merge

from .conftest import REPO

DEFAULTS = REPO / "workflow" / "schemas" / "defaults.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def project(tmp_path, **settings) -> dict:
    """A project folder with the default tables present and ``settings`` as its config."""
    for name in ("samples.tsv", "patients.tsv", "platelets.tsv", "panel.yaml", "gating/default.yaml"):
        (tmp_path / "config" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "config" / name).write_text("x\n")
    return {"visits": ["V1", "V2", "V3"], **settings}


def complete(tmp_path, config):
    return complete_config(config, DEFAULTS, SCHEMA, tmp_path)


def test_deep_merge_replaces_values_and_lists_and_merges_mappings():
    defaults = {"a": 1, "b": {"c": 2, "d": [1, 2], "e": {"f": 3, "g": 4}}, "h": [5]}
    merged = deep_merge(defaults, {"b": {"d": [9], "e": {"g": 7}}, "h": [], "i": {"j": 1}})
    assert merged == {"a": 1, "b": {"c": 2, "d": [9], "e": {"f": 3, "g": 7}}, "h": [], "i": {"j": 1}}
    assert defaults["b"]["e"]["g"] == 4  # the defaults are not changed


def test_a_short_config_gets_every_default(tmp_path):
    config = complete(tmp_path, project(tmp_path, transform={"fluorescence": "asinh"}))
    assert config["transform"] == {**yaml.safe_load(DEFAULTS.read_text())["transform"], "fluorescence": "asinh"}
    assert config["baseline_visit"] == "V1" and config["demo"]["enabled"] is False
    assert config["labels"]["visits"] == {} and config["export"]["fcs"] is True


def test_the_demo_config_gives_only_what_differs_from_the_defaults():
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    defaults = yaml.safe_load(DEFAULTS.read_text())

    def repeated(user, default, prefix=""):
        for key, value in user.items():
            if isinstance(value, dict) and isinstance(default.get(key), dict):
                yield from repeated(value, default[key], f"{prefix}{key}.")
            elif key in default and default[key] == value:
                yield prefix + key

    assert list(repeated(demo, defaults)) == []


@pytest.mark.parametrize("settings,expected", [
    ({"transform": {"fluorescence": "log10"}},
     "'transform.fluorescence' is 'log10'; it must be one of logicle, asinh"),
    ({"transfrom": {}}, "unknown key 'transfrom' (did you mean 'transform'?); allowed keys in the top level: "),
    ({"transform": {"logicle_w": "guess"}},
     "'transform.logicle_w' is 'guess'; it must be one of estimate; or a number >= 0"),
    ({"discovery": {"max_cells": 10}}, "'discovery.max_cells' is 10; it must be a whole number >= 100"),
    ({"labels": {"cohorts": {"A": {"colour": "green"}}}},
     "'labels.cohorts.A.colour' is 'green'; it must match ^#[0-9A-Fa-f]{6}$ (a colour as #rrggbb)"),
    ({"baseline_visit": "V9"}, "'baseline_visit' is 'V9'; it must be one of the visits ['V1', 'V2', 'V3']"),
    ({"panel": "mine.yaml"}, "'panel' names 'mine.yaml', which does not exist (relative paths are read from the "
                             "project folder "),
])
def test_a_bad_setting_is_named_with_what_it_may_be(tmp_path, settings, expected):
    with pytest.raises(ConfigError) as caught:
        complete(tmp_path, project(tmp_path, **settings))
    message = str(caught.value)
    assert expected in message, message
    assert len(message.splitlines()) <= 4, message


def test_missing_visits_are_named_with_their_description(tmp_path):
    with pytest.raises(ConfigError, match=r"'visits' is missing \(the trial's visits in study order"):
        complete(tmp_path, {})


def test_files_the_demo_writes_need_not_exist_yet(tmp_path):
    config = project(tmp_path, demo={"enabled": True}, clinical={"platelets": "resources/demo/platelets.tsv"})
    assert complete(tmp_path, config)["clinical"]["platelets"] == "resources/demo/platelets.tsv"
    config["demo"]["enabled"] = False
    with pytest.raises(ConfigError, match="'clinical.platelets' names 'resources/demo/platelets.tsv', which does "
                                          "not exist"):
        complete(tmp_path, config)

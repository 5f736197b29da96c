"""The workflow's configuration: the user's settings deep-merged over the defaults, checked in a few lines.

A project's config/config.yaml gives only what differs from ``workflow/schemas/defaults.yaml``; relative paths
are read from the project folder (the folder Snakemake runs in). A wrong setting is reported by its key, the
value found and the values allowed, never as a dump of the schema.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

MAX_REPORTED = 8  # problems listed before "and N more"
DEFAULTS_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "defaults.yaml"  # in the repository

# config keys that name files (dotted), and when each must exist before the run starts
PATH_KEYS = ("samples", "patients", "panel", "gating_template", "gating_overrides", "clinical.platelets",
             "clinical.blood_counts", "compensation.matrix", "compensation.controls")
DEMO_MADE = ("clinical.platelets", "clinical.blood_counts", "compensation.controls")  # written by the simulator


class ConfigError(ValueError):
    """A setting that is unknown, missing or outside its allowed values."""


def deep_merge(defaults: Mapping, overrides: Mapping) -> dict:
    """``overrides`` over ``defaults``: mappings merged key by key at every depth; lists and values replaced."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def with_defaults(path: str | os.PathLike) -> dict:
    """A config file merged over the workflow's defaults, unchecked (for scripts that use the demo's settings)."""
    return deep_merge(yaml.safe_load(DEFAULTS_PATH.read_text()) or {}, yaml.safe_load(Path(path).read_text()) or {})


def _dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _describe(schema: Mapping) -> str:
    """What a (sub)schema accepts, in words: 'one of a, b', 'a number >= 0', 'a list of strings'."""
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    words = {"string": "a string", "number": "a number", "integer": "a whole number", "boolean": "true or false",
             "array": "a list", "object": "a mapping of keys to values"}
    kind = schema.get("type")
    text = " or ".join(words.get(k, k) for k in (kind if isinstance(kind, list) else [kind])) if kind else "a value"
    bounds = [f">= {schema['minimum']}" if "minimum" in schema else "",
              f"> {schema['exclusiveMinimum']}" if "exclusiveMinimum" in schema else "",
              f"<= {schema['maximum']}" if "maximum" in schema else ""]
    return " ".join([text, *[b for b in bounds if b]])


def _message(error: jsonschema.ValidationError) -> str:
    """One line for one schema violation, naming the key, the value and what is allowed."""
    key = _dotted(error.absolute_path)
    where = f"'{key}'" if key else "the top level"
    schema, value = error.schema, error.instance
    hint = f" ({schema['description']})" if isinstance(schema, Mapping) and schema.get("description") else ""
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        lines = []
        for extra in sorted(set(value) - set(allowed)):
            close = difflib.get_close_matches(extra, allowed, n=1)
            lines.append(f"unknown key '{_dotted([*error.absolute_path, extra])}'"
                         f"{f' (did you mean {close[0]!r}?)' if close else ''}; allowed keys in {where}: "
                         f"{', '.join(allowed)}")
        return "\n  ".join(lines)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        described = schema.get("properties", {}).get(missing, {}).get("description", "")
        return f"'{_dotted([*error.absolute_path, missing])}' is missing{f' ({described})' if described else ''}"
    if error.validator in ("enum", "type", "minimum", "exclusiveMinimum", "maximum"):
        return f"{where} is {value!r}; it must be {_describe(schema)}{hint}"
    if error.validator in ("oneOf", "anyOf"):
        options = "; or ".join(_describe(s) for s in error.validator_value)
        return f"{where} is {value!r}; it must be {options}{hint}"
    if error.validator == "minItems":
        return f"{where} is {value!r}; it needs at least {error.validator_value} item(s){hint}"
    if error.validator == "uniqueItems":
        return f"{where} lists a value more than once: {value!r}"
    if error.validator == "pattern":
        return f"{where} is {value!r}; it must match {error.validator_value}{hint}"
    return f"{where}: {error.message}"


def config_problems(config: Mapping, schema: Mapping) -> list[str]:
    """Every violation of ``schema`` by ``config``, one line each, in the order of the keys."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    return [_message(e) for e in errors]


def _get(config: Mapping, dotted: str):
    value = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _required_paths(config: Mapping) -> list[str]:
    """The path keys whose file must exist before the run: those in use and not written by the demo."""
    demo = bool(config.get("demo", {}).get("enabled"))
    source = config.get("compensation", {}).get("source")
    keys = []
    for key in PATH_KEYS:
        if (key == "compensation.matrix" and source != "matrix") or (key == "compensation.controls"
                                                                     and source != "controls"):
            continue
        if demo and key in DEMO_MADE:
            continue
        keys.append(key)
    return keys


def missing_files(config: Mapping, project_dir: str | os.PathLike) -> list[str]:
    """One line per configured file that does not exist (relative paths are read from ``project_dir``)."""
    problems = []
    for key in _required_paths(config):
        value = _get(config, key)
        if value and not (Path(project_dir) / str(value)).is_file():
            problems.append(f"'{key}' names {value!r}, which does not exist (relative paths are read from the "
                            f"project folder {Path(project_dir).resolve()})")
    return problems


def complete_config(user: Mapping, defaults_path: str | os.PathLike, schema_path: str | os.PathLike,
                    project_dir: str | os.PathLike = ".") -> dict:
    """The run's configuration: ``user`` over the defaults, checked against the schema and the files it names.

    ``baseline_visit`` defaults to the first visit. Raises :class:`ConfigError` listing every problem in a line
    (at most :data:`MAX_REPORTED`), each naming the key and what it may be.
    """
    defaults = yaml.safe_load(Path(defaults_path).read_text()) or {}
    config = deep_merge(defaults, user or {})
    if config.get("visits") and not config.get("baseline_visit"):
        config["baseline_visit"] = config["visits"][0]
    problems = config_problems(config, yaml.safe_load(Path(schema_path).read_text()))
    if not problems:
        problems = missing_files(config, project_dir)
        if config["baseline_visit"] not in config["visits"]:
            problems.append(f"'baseline_visit' is {config['baseline_visit']!r}; it must be one of the visits "
                            f"{config['visits']}")
    if problems:
        shown = problems[:MAX_REPORTED] + ([f"... and {len(problems) - MAX_REPORTED} more"]
                                           if len(problems) > MAX_REPORTED else [])
        raise ConfigError("config: " + "\n  ".join(shown) + "\nGive only what differs from the defaults "
                          "(workflow/schemas/defaults.yaml); every key is described in config/README.md.")
    return config

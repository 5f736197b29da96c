"""Tables on disk: TSV written atomically with fixed formatting, so reruns give byte-identical files."""

from __future__ import annotations

import json
import os

import pandas as pd

from .atomic import atomic_path


def write_tsv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``table`` as TSV: to a temporary name, then renamed, floats with 6 significant digits."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write JSON atomically with sorted keys, so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_tsv(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """Read a TSV table, with an error that names the file and what it should hold."""
    try:
        return pd.read_csv(path, sep="\t", dtype={"sample_id": str, "patient_id": str})
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}. Check the path in config/config.yaml.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} is not a readable tab-separated table: {err}") from None

"""Read FCS files with flowkit, with one clear error per unreadable file."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import flowkit as fk


class FcsReadError(ValueError):
    """An FCS file is missing, truncated or not FCS at all."""


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_fcs(path: str | os.PathLike) -> fk.Sample:
    """Read an FCS 2.0/3.0/3.1 file into a flowkit Sample (events scaled by $PnG/$PnE/$TIMESTEP).

    Raises
    ------
    FcsReadError
        Naming the file and what is wrong with it, for a missing, empty, truncated or non-FCS file.
    """
    path = Path(path)
    if not path.is_file():
        raise FcsReadError(f"{path}: FCS file not found. Check the 'fcs' column of the sample sheet.")
    if path.stat().st_size < 58:
        raise FcsReadError(f"{path}: only {path.stat().st_size} bytes, too short to be an FCS file "
                           "(the HEADER alone is 58 bytes). Re-export the file from the acquisition software.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not magic.startswith(b"FCS"):
        raise FcsReadError(f"{path}: does not start with 'FCSx.x' (found {magic!r}); it is not an FCS file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fk.Sample(str(path), sample_id=path.stem, subsample=0)
    except Exception as err:  # flowio raises many types for malformed files; report them all as one error
        raise FcsReadError(f"{path}: cannot be read as FCS ({type(err).__name__}: {err}). The file may be "
                           "truncated or corrupt; re-export it from the acquisition software.") from None

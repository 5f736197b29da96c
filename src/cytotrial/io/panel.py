"""Panels: find each marker's detector in an FCS file from its $PnS stain name."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class PanelError(ValueError):
    """An FCS file does not carry a marker or channel the panel requires."""


def normalise_name(name: str) -> str:
    """Case- and punctuation-blind form of a stain name: 'FoxP3' and 'FOXP3', 'HLA DR' and 'HLA-DR' agree."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class Panel:
    """Markers (with aliases), scatter channels and the time channel of a staining panel."""

    name: str
    scatter: tuple[str, ...]
    time: str
    markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)  # marker -> $PnN, for files without usable $PnS

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Panel":
        with open(path) as handle:
            raw = yaml.safe_load(handle)
        markers = {str(m): tuple(str(a) for a in (spec or {}).get("aliases", []))
                   for m, spec in raw["markers"].items()}
        channels = {str(m): str(spec["channel"]) for m, spec in raw["markers"].items() if spec and spec.get("channel")}
        return cls(raw.get("name", Path(path).stem), tuple(raw["scatter"]), raw["time"], markers, channels)

    def resolve(self, channels: list[str], stains: list[str | None], source: str) -> dict[str, str]:
        """Map every panel marker, scatter and time name to a channel ($PnN) of one file.

        A marker is found by its stain name ($PnS, or an alias), whatever the channel order of the file; where no
        $PnS matches (files written without stain names), by the panel's explicit ``channel`` for it.

        Parameters
        ----------
        channels
            $PnN of the file's parameters.
        stains
            $PnS of the file's parameters (None where absent).
        source
            File name, for error messages.

        Returns
        -------
        dict
            name -> $PnN, for every marker, scatter channel and the time channel.
        """
        by_stain: dict[str, str] = {}
        for channel, stain in zip(channels, stains, strict=True):
            if stain:
                by_stain.setdefault(normalise_name(stain), channel)
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for marker, aliases in self.markers.items():
            match = next((by_stain[normalise_name(n)] for n in (marker, *aliases) if normalise_name(n) in by_stain),
                         None)
            if match is None and self.channels.get(marker) in channels:
                match = self.channels[marker]
            if match is None:
                missing.append(marker)
            else:
                resolved[marker] = match
        for channel in (*self.scatter, self.time):
            if channel in channels:
                resolved[channel] = channel
            else:
                missing.append(channel)
        if missing:
            found = [s for s in stains if s] + list(channels)
            hints = []
            for name in missing:
                close = difflib.get_close_matches(name, found, n=3, cutoff=0.5)
                hints.append(f"'{name}' (closest in file: {', '.join(close) if close else 'none'})")
            raise PanelError(f"{source}: the panel '{self.name}' needs {', '.join(hints)}, not found in the file's "
                             f"$PnS/$PnN. Add the file's name for it as an alias in the panel file, or check that "
                             f"this file belongs to this panel.")
        return resolved

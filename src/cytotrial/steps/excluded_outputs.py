"""The gating outputs of an excluded sample: empty tables and files that say why."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..preprocess.exclusion import excluded_events
from ..io.atomic import atomic_path
from ..io.tables import write_json, write_tsv
from ..preprocess.events import write_h5ad
from ..quantify.mfi import MFI_COLUMNS
from ..quantify.populations import POPULATION_COLUMNS


GATING_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"


def write_excluded_gating_outputs(sample_id: str, reason: str, outputs: dict) -> None:
    """Write the gate_sample outputs of an excluded sample: empty population and MFI tables, an empty event
    AnnData, realised gates ``{"excluded": reason, "gates": []}``, empty review arrays, and GatingML / FlowJo
    documents without gates whose comment gives the reason (when the rule has them; flowkit writes no empty
    strategy)."""
    write_tsv(pd.DataFrame(columns=POPULATION_COLUMNS), outputs["populations"])
    write_tsv(pd.DataFrame(columns=MFI_COLUMNS), outputs["mfi"])
    write_h5ad(excluded_events(sample_id, reason), outputs["events"])
    write_json({"sample_id": sample_id, "excluded": reason, "gates": []}, outputs["gates"])
    with atomic_path(outputs["review"], suffix=".npz") as tmp:
        np.savez_compressed(tmp)
    note = f"sample {sample_id} was excluded from the run: {reason}".replace("--", "- -")
    documents = {"gatingml": f'<gating:Gating-ML xmlns:gating="{GATING_NS}">\n  <!-- {note} -->\n</gating:Gating-ML>',
                 "workspace": f'<Workspace version="20.0">\n  <!-- {note} -->\n</Workspace>'}
    for key, document in documents.items():
        if key in outputs:
            with atomic_path(outputs[key], suffix=".xml") as tmp:
                tmp.write_text(f"<?xml version='1.0' encoding='utf-8'?>\n{document}\n")

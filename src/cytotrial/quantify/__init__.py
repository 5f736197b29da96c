"""Quantification: population counts and percentages, MFI, absolute counts, and AnnData views of them.

* :mod:`.populations` — per-sample population table, realised gates, the merged long table;
* :mod:`.mfi` — median fluorescence of every marker in every population;
* :mod:`.absolute` — cells/uL from the blood count (lymphocytes, leukocytes) or counting beads;
* :mod:`.matrices` — the sample x population AnnData and the per-sample event AnnData.
"""

from .absolute import AbsoluteCountError, absolute_counts
from .matrices import event_anndata, population_anndata
from .mfi import population_mfi
from .populations import POPULATION_COLUMNS, add_qc_columns, merge_population_tables, population_table, realised_gates

__all__ = ["POPULATION_COLUMNS", "AbsoluteCountError", "add_qc_columns", "absolute_counts", "event_anndata", "merge_population_tables", "population_anndata",
           "population_mfi", "population_table", "realised_gates"]

"""Stage 2, preprocessing: from an FCS file's raw events to compensated, transformed, quality-checked events.

compensation/ (spillover matrices), transforms.py and logicle.py (per-channel scales), qc/ (event QC),
exclusion.py (why a file is left out), events.py (one file's whole preprocessing, and batch transform fits).
"""

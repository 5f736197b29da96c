"""Demo-trial simulator: a phase I UC-MSC trial in ITP, written as real cytometer FCS files with ground truth.

Modules
-------
instrument  detectors, spillover model, noise, FCS keywords (the cytometer)
cells       the leukocyte leaf populations and their marker phenotypes (the biology)
trial       patients, visits, responders, platelet counts, per-sample composition (the trial)
truth       reported populations as sets of leaf labels, and their true frequencies
run         generate one sample or a whole trial (FCS + truth + clinical tables)
"""

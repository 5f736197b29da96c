"""Hierarchical, data-driven gating: templates, cut-point methods and their application to a sample."""

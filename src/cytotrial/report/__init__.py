"""Figures and the HTML summary that translational researchers review."""

"""Exports for review outside the workflow: de-identified FCS files of the QC-kept, compensated events, and one
FlowJo 10 workspace of the whole trial that references them."""

from .events import export_excluded_events, export_sample_events
from .workspace import write_trial_workspace

__all__ = ["export_excluded_events", "export_sample_events", "write_trial_workspace"]

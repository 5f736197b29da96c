"""Event-level QC of one sample (PeacoQC / flowAI-like): margin events, flow-rate anomalies, signal anomalies.

Pure numpy on arrays the caller provides (no file reading); ``run_event_qc`` runs the steps in order and
returns a ``QcResult`` with the events kept, the counts removed by each step, flags and per-bin data for
``plot_event_qc`` (in ``cytotrial.preprocess.qc.plot``, imported on demand so that matplotlib is loaded only to plot).
"""

from .core import SUMMARY_COLUMNS, QcResult, resolve_channels, run_event_qc
from .flow_rate import FlowRateResult, find_flow_rate_anomalies
from .margins import MarginResult, find_margin_events
from .settings import STEPS, QcSettings
from .signal import SignalResult, find_signal_anomalies

__all__ = ["STEPS", "SUMMARY_COLUMNS", "FlowRateResult", "MarginResult", "QcResult", "QcSettings",
           "SignalResult", "find_flow_rate_anomalies", "find_margin_events", "find_signal_anomalies",
           "resolve_channels", "run_event_qc"]

"""cytotrial: clinical-trial flow cytometry, from FCS files to immune-change tables linked to response."""

__version__ = "0.1.0"

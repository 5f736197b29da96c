"""Statistics of immune changes over the trial's visits."""

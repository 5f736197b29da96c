"""Reading, checking and writing FCS files."""

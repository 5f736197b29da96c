"""Numerical helpers below every stage: quantiles from exact order statistics and robust regression lines."""

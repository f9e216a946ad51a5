"""Figures (matplotlib, imported lazily by callers): one module per topic."""

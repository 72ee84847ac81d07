"""Scoring detector configurations on labelled photos (`faceveil eval`)."""

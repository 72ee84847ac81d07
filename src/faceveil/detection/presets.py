"""Detector presets (placeholder replaced below)."""

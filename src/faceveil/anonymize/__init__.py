"""Hiding faces: regions (shape, scale), filters (blur, pixelate, solid, none), the Anonymizer."""

from faceveil.anonymize.anonymizer import Anonymizer, Result

__all__ = ["Anonymizer", "Result"]

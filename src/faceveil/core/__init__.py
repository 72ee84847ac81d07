"""Core types that flow through every pipeline: :class:`Detections` and :class:`Frame`."""

from faceveil.core.detections import Detections
from faceveil.core.frame import Frame

__all__ = ["Detections", "Frame"]

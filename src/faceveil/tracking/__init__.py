"""Face tracking for video: hide a face through the frames where the detector misses it.

* :class:`FaceTracker` (live or files): each frame's detections are returned unchanged, plus an
  enlarged predicted box for every face detected within the last ``hold`` frames.
* :class:`Backfill` (files only): delays frames by a bounded number, to also hide a face between
  two of its detections (interpolation) and just before its first detection (look-back).

Both only ever ADD regions: a raw detection is never removed or moved.
"""

from __future__ import annotations

from faceveil.tracking.backfill import Backfill
from faceveil.tracking.kalman import KalmanBoxFilter
from faceveil.tracking.tracker import DETECTED, FILLED, TRACKED, FaceTracker, TrackerConfig

__all__ = ["DETECTED", "FILLED", "TRACKED", "Backfill", "FaceTracker", "KalmanBoxFilter", "TrackerConfig"]

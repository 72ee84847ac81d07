"""A small constant-velocity Kalman filter for one face box (numpy only).

The state is ``(cx, cy, w, h, vcx, vcy, vw, vh)``: the box centre and size and their velocities in
pixels per frame. The noise of every term is proportional to the box size (as in SORT, DeepSORT
and ByteTrack), so the filter behaves the same for a 20 px face and a 400 px face.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Position noise as a share of the box size (per frame).
STD_POSITION = 1.0 / 20.0
#: Velocity noise as a share of the box size (per frame).
STD_VELOCITY = 1.0 / 160.0
#: Width and height never shrink below this many pixels, so every box stays valid.
MIN_SIZE = 1.0

_DIM = 4
_MOTION = np.eye(2 * _DIM)
_MOTION[:_DIM, _DIM:] = np.eye(_DIM)  # position += velocity, one frame at a time
_OBSERVE = np.eye(_DIM, 2 * _DIM)


def xyxy_to_cxcywh(box: npt.ArrayLike) -> FloatArray:
    """``(x1, y1, x2, y2)`` to ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64).reshape(4)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float64)


def cxcywh_to_xyxy(box: npt.ArrayLike) -> FloatArray:
    """``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = np.asarray(box, dtype=np.float64).reshape(4)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


class KalmanBoxFilter:
    """Constant-velocity Kalman filter on a box's centre and size.

    Call :meth:`predict` once per frame, then :meth:`update` when the box was measured in that
    frame. :attr:`box` is the current estimate as ``(x1, y1, x2, y2)``; its width and height are
    always at least :data:`MIN_SIZE` pixels.
    """

    def __init__(self, box_xyxy: npt.ArrayLike) -> None:
        """Start at the measured box ``box_xyxy``, with zero velocity."""
        measured = self._checked(box_xyxy)
        w, h = measured[2], measured[3]
        self.mean: FloatArray = np.concatenate([measured, np.zeros(_DIM)])
        std = np.array(
            [
                2 * STD_POSITION * w,
                2 * STD_POSITION * h,
                2 * STD_POSITION * w,
                2 * STD_POSITION * h,
                10 * STD_VELOCITY * w,
                10 * STD_VELOCITY * h,
                10 * STD_VELOCITY * w,
                10 * STD_VELOCITY * h,
            ]
        )
        self.covariance: FloatArray = np.diag(np.square(std))

    @staticmethod
    def _checked(box_xyxy: npt.ArrayLike) -> FloatArray:
        box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise ValueError(f"a box must be 4 finite numbers x1, y1, x2, y2, got {box.tolist()}")
        measured = xyxy_to_cxcywh(box)
        measured[2:] = np.maximum(measured[2:], MIN_SIZE)
        return measured

    def _size_noise(self, position: float, velocity: float | None) -> FloatArray:
        w = max(float(self.mean[2]), MIN_SIZE)
        h = max(float(self.mean[3]), MIN_SIZE)
        std = [position * w, position * h, position * w, position * h]
        if velocity is not None:
            std += [velocity * w, velocity * h, velocity * w, velocity * h]
        return np.diag(np.square(np.asarray(std, dtype=np.float64)))

    def _keep_positive(self) -> None:
        for i in (2, 3):
            if self.mean[i] < MIN_SIZE:
                self.mean[i] = MIN_SIZE
                self.mean[i + _DIM] = max(float(self.mean[i + _DIM]), 0.0)

    def predict(self) -> None:
        """Advance the state by one frame."""
        noise = self._size_noise(STD_POSITION, STD_VELOCITY)
        self.mean = _MOTION @ self.mean
        self.covariance = _MOTION @ self.covariance @ _MOTION.T + noise
        self._keep_positive()

    def update(self, box_xyxy: npt.ArrayLike) -> None:
        """Correct the state with the box measured in the current frame."""
        measured = self._checked(box_xyxy)
        noise = self._size_noise(STD_POSITION, None)
        projected = _OBSERVE @ self.covariance @ _OBSERVE.T + noise
        # OpenCV's small-matrix solve: numpy's goes through BLAS, whose threads fight the detector's
        _, solved = cv2.solve(projected, _OBSERVE @ self.covariance, flags=cv2.DECOMP_CHOLESKY)
        gain = np.asarray(solved, dtype=np.float64).T
        self.mean = self.mean + gain @ (measured - _OBSERVE @ self.mean)
        self.covariance = self.covariance - gain @ projected @ gain.T
        self.covariance = (self.covariance + self.covariance.T) / 2
        self._keep_positive()

    @property
    def box(self) -> FloatArray:
        """The current estimate as ``(x1, y1, x2, y2)`` (float64)."""
        return cxcywh_to_xyxy(self.mean[:_DIM])

    @property
    def velocity(self) -> FloatArray:
        """The estimated ``(vcx, vcy, vw, vh)`` in pixels per frame."""
        return self.mean[_DIM:].copy()

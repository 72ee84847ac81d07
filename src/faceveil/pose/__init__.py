"""Body pose (BlazePose, 33 landmarks per person) and whole-person privacy, fully offline.

Photos::

    from faceveil.pose.photo import PoseProcessor

    output = PoseProcessor().apply(rgb)     # (H, W, 3) uint8 RGB
    output.image                            # faces blurred, skeletons drawn
    output.to_json()                        # {"schema", "width", "height", "people": [...]}

Videos: :func:`faceveil.pose.video.pose_video`. The ``head``/``person`` targets and
``skeleton_only`` of :class:`faceveil.AnonymizerConfig` use :mod:`faceveil.pose.coverage`.
"""

from faceveil.pose.landmarks import CONNECTIONS, LANDMARK_NAMES, PersonPose, PoseResult

__all__ = ["CONNECTIONS", "LANDMARK_NAMES", "PersonPose", "PoseResult"]

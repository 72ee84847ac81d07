"""Pose and whole-person privacy on synthetic pictures, with fake models (fast, no weights)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.anonymize.regions import union_mask
from faceveil.cli.main import build_parser
from faceveil.cli.options import anonymizer_config
from faceveil.config import AnonymizerConfig, MaskConfig, PoseConfig
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError, ValidationError
from faceveil.pose.coverage import BodyCoverage
from faceveil.pose.draw import draw_skeletons
from faceveil.pose.fake import FakePoseBackend, FakeSegmenter, normalized, stick_figure
from faceveil.pose.landmarks import LANDMARK_NAMES, PersonPose, PoseResult
from faceveil.pose.people import PoseEstimator
from faceveil.pose.smoothing import PoseSmoother

RGB = npt.NDArray[np.uint8]
FACE_A = (100.0, 60.0, 130.0, 90.0)
FACE_B = (200.0, 60.0, 230.0, 90.0)
MAGENTA = (255, 0, 255)


def _scene() -> RGB:
    """Grey picture with two white 'faces'."""
    rgb = np.full((360, 360, 3), 90, np.uint8)
    for x1, y1, x2, y2 in (FACE_A, FACE_B):
        rgb[int(y1) : int(y2), int(x1) : int(x2)] = 255
    return rgb


def _white_person(rgb: RGB) -> npt.NDArray[np.float32] | None:
    """Fake BlazePose: a person whose nose is at the centre of the leftmost white face it sees."""
    ys, xs = np.nonzero(np.all(rgb == 255, axis=2))
    if not len(xs):
        return None
    first = xs < xs.min() + 40
    xs, ys = xs[first], ys[first]
    height, width = rgb.shape[:2]
    return normalized(stick_figure((float(xs.mean()), float(ys.mean())), 30.0), width, height)


def _estimator(rounds: int = 0) -> PoseEstimator:
    return PoseEstimator(PoseConfig(search_rounds=rounds), FakePoseBackend(_white_person))


def test_every_face_seeds_its_own_person_with_other_faces_painted_over() -> None:
    people = _estimator().estimate(_scene(), boxes(FACE_A, FACE_B))
    assert len(people) == 2
    for person, face in zip(sorted(people, key=lambda p: p.nose[0]), (FACE_A, FACE_B), strict=True):
        assert person.face == face
        x, y = person.nose
        assert face[0] <= x <= face[2] and face[1] <= y <= face[3]
        assert person.points.shape == (33, 3)


def test_a_person_whose_nose_misses_the_face_is_rejected() -> None:
    def elsewhere(rgb: RGB) -> npt.NDArray[np.float32]:
        return normalized(stick_figure((2.0, 2.0), 30.0), rgb.shape[1], rgb.shape[0])

    estimator = PoseEstimator(PoseConfig(search_rounds=0), FakePoseBackend(elsewhere))
    assert estimator.estimate(_scene(), boxes(FACE_A)) == []


def test_search_finds_people_without_faces_one_per_round_and_no_duplicates() -> None:
    people = _estimator(rounds=3).estimate(_scene(), None)
    assert len(people) == 2  # the third round sees only painted-over people
    assert all(p.face is None for p in people)

    always_same = FakePoseBackend(lambda rgb: normalized(stick_figure((150, 70), 30), 360, 360))
    estimator = PoseEstimator(PoseConfig(search_rounds=4), always_same)
    assert len(estimator.estimate(_scene(), None)) == 1
    assert len(always_same.calls) == 2  # stops as soon as it only sees someone known


def test_low_scoring_and_tiny_faces_do_not_seed_people() -> None:
    backend = FakePoseBackend(_white_person)
    estimator = PoseEstimator(PoseConfig(search_rounds=0, min_face=40), backend)
    assert estimator.estimate(_scene(), boxes(FACE_A)) == []
    estimator = PoseEstimator(PoseConfig(search_rounds=0, min_face_score=0.5), backend)
    assert estimator.estimate(_scene(), boxes(FACE_A, score=0.3)) == []
    assert backend.calls == []


def test_pose_validation_and_json_schema() -> None:
    with pytest.raises(ValidationError):
        PersonPose(np.zeros((17, 3), np.float32), np.zeros(17, np.float32))
    raw = stick_figure((50, 40), 20)
    person = PersonPose(raw[:, :3], raw[:, 3], face=(40, 30, 60, 50))
    record = PoseResult(200, 100, [person]).to_json(image="x.jpg")
    assert list(record) == ["schema", "width", "height", "image", "people"]
    (one,) = record["people"]
    assert list(one) == ["person", "track", "box", "score", "face_box", "landmarks"]
    assert [lm["name"] for lm in one["landmarks"]] == list(LANDMARK_NAMES)
    nose = one["landmarks"][0]
    assert list(nose) == ["name", "x", "y", "z", "nx", "ny", "nz", "visibility"]
    assert (nose["x"], nose["y"], nose["nx"], nose["ny"]) == (50.0, 40.0, 0.25, 0.4)


def test_head_box_holds_the_face_and_reaches_above_it() -> None:
    raw = stick_figure((115, 80), 30)
    face = (103.0, 68.0, 127.0, 92.0)
    person = PersonPose(raw[:, :3], raw[:, 3], face=face)
    x1, y1, x2, y2 = person.head_box()
    assert x1 <= face[0] and x2 >= face[2] and y2 >= face[3]
    eyes, ear_span = raw[2, 1], raw[8, 0] - raw[7, 0]
    assert y1 < eyes - 0.5 * ear_span  # hair
    behind = raw.copy()
    behind[:11, :2] = behind[0, :2]  # face landmarks squeezed together (seen from behind)
    size = PersonPose(behind[:, :3], behind[:, 3]).head_box()
    assert size[2] - size[0] >= 0.5 * (raw[12, 0] - raw[11, 0])  # still a head's width


def test_skeleton_drawn_in_its_colours_and_hidden_joints_skipped() -> None:
    raw = stick_figure((100, 40), 20)
    raw[27:, 3] = 0.1  # feet not visible
    person = PersonPose(raw[:, :3], raw[:, 3])
    image = np.zeros((200, 200, 3), np.uint8)
    draw_skeletons(image, [person], PoseConfig(joint_color=(255, 0, 0), bone_color=(0, 255, 0)))
    lx, ly = (int(v) for v in raw[11, :2])
    assert tuple(image[ly, lx]) == (255, 0, 0)
    mid = ((raw[23, :2] + raw[25, :2]) / 2).astype(int)  # left thigh: a bone
    assert image[mid[1], mid[0], 1] > 200
    fx, fy = (int(v) for v in raw[31, :2])
    assert image[fy - 3 : fy + 4, fx - 3 : fx + 4].max() == 0


def _anonymizer(target: str, skeleton: bool = False, segmenter: FakeSegmenter | None = None) -> Anonymizer:
    config = AnonymizerConfig(
        mask=MaskConfig(mode="solid", color=MAGENTA),
        target=target,  # type: ignore[arg-type]
        skeleton_only=skeleton,
        pose=PoseConfig(search_rounds=0),
    )
    body = BodyCoverage(config, _estimator(), segmenter or FakeSegmenter(_bright))
    return Anonymizer(config, FakeDetector(boxes(FACE_A)), body=body)


def _bright(rgb: RGB) -> npt.NDArray[np.bool_]:
    return np.asarray(rgb.mean(axis=2) > 150)


def _hidden(image: RGB) -> npt.NDArray[np.bool_]:
    return np.asarray(np.all(image == MAGENTA, axis=2))


def test_head_and_person_targets_are_supersets_of_face() -> None:
    scene = _scene()
    scene[150:300, 90:140] = 200  # a bright 'body' under face A
    face = _hidden(Anonymizer(_anonymizer("face").config, FakeDetector(boxes(FACE_A))).apply(scene).image)
    head = _anonymizer("head").apply(scene)
    person = _anonymizer("person").apply(scene)
    assert face.any()
    assert np.all(_hidden(head.image)[face]) and _hidden(head.image).sum() > face.sum()
    assert np.all(_hidden(person.image)[face])
    assert _hidden(person.image)[160:290, 100:130].all()  # the body is hidden
    assert len(head.detections) == 2  # the face, then the head pose added
    assert np.array_equal(head.detections.xyxy[0], np.asarray(FACE_A, np.float32))
    # face B seeded nobody (the detector missed it) and is bright, but lies outside every crop
    assert not _hidden(person.image)[200:, 250:].any()


def test_person_target_with_empty_segmentation_still_hides_faces() -> None:
    result = _anonymizer("person", segmenter=FakeSegmenter()).apply(_scene())
    mask = union_mask(result.regions, 360, 360)
    assert mask[75, 115] and _hidden(result.image)[75, 115]


def test_person_target_hides_the_posed_body_where_segmentation_misses_it() -> None:
    result = _anonymizer("person", segmenter=FakeSegmenter()).apply(_scene())
    assert len(result.people) == 1
    person = result.people[0]
    hidden = _hidden(result.image)
    torso = person.points[[11, 12, 24, 23], :2].mean(axis=0).astype(int)
    assert hidden[torso[1], torso[0]]  # inside the torso
    for a, b in ((23, 25), (11, 13)):  # a thigh and an upper arm
        if person.visibility[a] >= 0.5 and person.visibility[b] >= 0.5:
            mid = ((person.points[a, :2] + person.points[b, :2]) / 2).astype(int)
            assert hidden[mid[1], mid[0]]
    assert not hidden[:, 250:].any()  # nobody else was posed there


def test_skeleton_only_hides_people_and_draws_them() -> None:
    scene = _scene()
    scene[150:300, 90:140] = 200
    result = _anonymizer("face", skeleton=True).apply(scene)
    assert len(result.people) == 1
    x, y = (int(v) for v in result.people[0].points[23, :2])  # left hip: a red joint
    assert tuple(result.image[y, x]) == (255, 0, 0)
    assert _hidden(result.image)[160:290, 100:110].any()


def test_target_is_validated_and_reaches_the_config_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match="face, head, person"):
        AnonymizerConfig(target="body")  # type: ignore[arg-type]
    args = build_parser().parse_args(["image", "x.jpg", "-o", "y.jpg", "--target", "head", "--skeleton-only"])
    config = anonymizer_config(args)
    assert (config.target, config.skeleton_only) == ("head", True)
    args = build_parser().parse_args(["video", "x.mp4", "-o", "y.mp4"])
    assert anonymizer_config(args).target == "face"
    with pytest.raises(ConfigError):
        PoseConfig(joint_color=(300, 0, 0))


def test_smoother_keeps_ids_and_steadies_jitter() -> None:
    rng = np.random.default_rng(0)
    smoother = PoseSmoother()
    base = stick_figure((100, 50), 20)
    raw_xs, smooth_xs, ids = [], [], set()
    for i in range(60):
        noisy = base.copy()
        noisy[:, :2] += rng.normal(0, 2.0, (33, 2)).astype(np.float32)
        (out,) = smoother.update([PersonPose(noisy[:, :3], noisy[:, 3])], i / 25)
        ids.add(out.track)
        raw_xs.append(noisy[0, 0])
        smooth_xs.append(out.points[0, 0])
    assert ids == {0}
    assert np.std(smooth_xs[10:]) < 0.5 * np.std(raw_xs[10:])
    assert smoother.update([], 3.0) == [] and len(smoother.recent()) == 1


def test_smoother_follows_fast_movement_with_little_lag() -> None:
    smoother = PoseSmoother()
    out = None
    for i in range(30):
        moving = stick_figure((100 + 12 * i, 50), 20)  # 300 px/s, about two body sizes a second
        (out,) = smoother.update([PersonPose(moving[:, :3], moving[:, 3])], i / 25)
    assert out is not None and abs(out.points[0, 0] - (100 + 12 * 29)) < 12

"""Signed manifests of live recordings: one per recorded file, written once the file is final.

A stream recorded with a manifest folder gets ``SEGMENT.mp4.manifest.json`` for every finished
file (each rolling segment, or the one recording), in that folder or beside the file. It is the
manifest of :mod:`faceveil.compliance.manifest` (``faceveil verify MANIFEST SEGMENT`` checks
it) with ``"input": {"kind": "live", "sha256": null}``: a live source has no file to hash. The
settings name the source and the outputs without passwords, query strings or stream keys, and
the counts are the file's own (frames, faces, frames hidden whole, repeated frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.compliance.keys import SigningKey
from faceveil.errors import OutputError
from faceveil.stream.audio import describe_sound
from faceveil.stream.safety import public_url
from faceveil.stream.sinks import OutputSpec, SegmentCounts

if TYPE_CHECKING:
    from faceveil.stream.spec import StreamSpec

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class SegmentManifestConfig:
    """Where the manifests of a stream's recorded files go and what signs them.

    Attributes:
        folder: the folder of the manifests (created when missing); None: beside each file.
        signing_key: the Ed25519 key that signs them; None writes unsigned manifests.
    """

    folder: Path | None = None
    signing_key: SigningKey | None = None

    def path_for(self, recording: Path) -> Path:
        """The manifest of ``recording``: ``NAME.mp4.manifest.json``."""
        folder = recording.parent if self.folder is None else self.folder
        return folder / f"{recording.name}{MANIFEST_SUFFIX}"


def stream_settings(spec: StreamSpec) -> dict[str, Any]:
    """A stream's settings as a manifest records them (no password, token or stream key)."""
    source = spec.source
    target = public_url(source.target) if source.kind == "url" else source.target
    if source.kind == "file":
        target = Path(source.target).name
    return {
        "stream": {
            "name": spec.name,
            "source": {"kind": source.kind, "target": target},
            "outputs": [_output(o) for o in spec.outputs],
            "live": spec.live,
            "source_config": spec.source_config,
            "encoder": spec.encoder,
            "segment_s": spec.segment_s,
            "keep_segments": spec.keep_segments,
            "on_late": spec.on_late,
            "max_lag": spec.max_lag,
            "queue_size": spec.queue_size,
            "duration": spec.duration,
            "regions": spec.regions,
            "encryption": spec.encryption,
            "sound": describe_sound(spec.audio, spec.audio_filter),
        }
    }


def _output(output: OutputSpec) -> dict[str, str]:
    target = Path(output.target).name if output.kind == "file" else public_url(output.target)
    return {"kind": output.kind, "target": target}


class SegmentManifests:
    """Writes (and signs) the manifest of each finished recorded file of one stream.

    A `faceveil.stream.sinks.SegmentObserver`: the file sink calls :meth:`finished` after a
    file is closed, and :meth:`removed` when ``keep`` deletes one (its manifest goes with it).
    The model files are hashed once, here, so a missing model fails before the first frame.
    """

    def __init__(self, spec: StreamSpec, config: SegmentManifestConfig) -> None:
        from faceveil.compliance.models import model_files

        self.config = config
        self.settings = stream_settings(spec)
        self.models = model_files(spec.live.anonymizer)

    def finished(self, path: Path, counts: SegmentCounts) -> None:
        """Write the manifest of the final file ``path``."""
        from dataclasses import asdict

        from faceveil.compliance.manifest import build_manifest, sign, write_manifest

        try:
            document = build_manifest(
                kind="stream",
                input_digest=None,
                output=path,
                settings=self.settings,
                models=self.models,
                counts=asdict(counts),
            )
        except OSError as exc:
            raise OutputError(f"cannot hash the recording {path}: {exc.strerror or exc}") from None
        write_manifest(self.config.path_for(path), sign(document, self.config.signing_key))

    def removed(self, path: Path) -> None:
        """Delete the manifest of a file that was rolled out."""
        self.config.path_for(path).unlink(missing_ok=True)

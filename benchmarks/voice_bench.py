"""Voice benchmark: privacy (EER of a speaker-verification attacker), utility (WER of a speech
recognizer) and speed of faceveil's voice disguise, side by side in one run with the original
speech and a fixed-alpha McAdams baseline.

    make bench-voice      # builds the throwaway judge environment under .bench/voice first
    .venv/bin/python benchmarks/voice_bench.py [--data DIR] [--seed N] [--json PATH]

Trial protocol (the data folder's README): enrollment = one test_other utterance, trial = every
other file; same speaker = target. Score = cosine of GE2E (resemblyzer) embeddings.
- ignorant: enrollment original, trial anonymized;
- lazy-informed: enrollment anonymized too, with its own random draw (faceveil) or the same
  fixed transform (McAdams).
WER: pocketsphinx on the transcribed utterances, pooled over all of them.
Speed: seconds of audio per CPU second of the anonymizer alone (one core, no threads).
The judges run in ``.bench/voice`` (never in faceveil's environment), through voice_judge.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "speech"
JUDGE_PYTHON = ROOT / ".bench" / "voice" / "bin" / "python"
CACHE = ROOT / ".bench" / "voice-cache"
RATE = 16000


def read_flac(path: Path) -> npt.NDArray[np.float32]:
    """Mono float32 samples (the speech set is 16 kHz mono)."""
    from faceveil.media.audio_io import read_audio

    clip = read_audio(path)
    if clip.rate != RATE:
        raise SystemExit(f"{path}: {clip.rate} Hz; this benchmark takes {RATE} Hz")
    return np.asarray(clip.samples.mean(axis=1), dtype=np.float32)


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def eer(target: npt.NDArray[np.float64], nontarget: npt.NDArray[np.float64]) -> float:
    """Equal error rate of scores (higher = same speaker)."""
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    order = np.argsort(-scores, kind="stable")
    labels = labels[order]
    miss = 1.0 - np.cumsum(labels) / len(target)  # targets below the threshold
    false_alarm = np.cumsum(1.0 - labels) / len(nontarget)
    i = int(np.argmin(np.abs(miss - false_alarm)))
    return float((miss[i] + false_alarm[i]) / 2.0)


def trial_eer(
    items: list[dict[str, Any]], enrol: dict[str, list[float]], trial: dict[str, list[float]]
) -> float:
    """EER over every (enrollment test_other utterance, other file) pair."""
    target: list[float] = []
    nontarget: list[float] = []
    for e in (i for i in items if i["enrol"]):
        a = np.asarray(enrol[e["utt_id"]])
        for t in items:
            if t["utt_id"] == e["utt_id"]:
                continue
            score = float(a @ np.asarray(trial[t["utt_id"]]))
            (target if t["speaker"] == e["speaker"] else nontarget).append(score)
    return eer(np.asarray(target), np.asarray(nontarget))


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level Levenshtein distance."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (word != other))
    return row[-1]


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c in " '").split())


def pooled_wer(transcripts: dict[str, str], asr: dict[str, str]) -> float:
    errors = sum(word_errors(normalise(ref), normalise(asr[utt])) for utt, ref in transcripts.items())
    return errors / sum(len(normalise(ref).split()) for ref in transcripts.values())


def load_items(data: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    transcripts: dict[str, str] = {}
    for line in (data / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            utt, text = line.split("\t", 1)
            transcripts[utt] = text
    items = [{**m, "path": data / m["file"], "enrol": m["file"].startswith("test_other/")} for m in manifest]
    return items, transcripts


def run_faceveil(
    items: list[dict[str, Any]], folder: Path, seed: int, settings: dict[str, Any]
) -> tuple[dict[str, Path], float, float]:
    """Disguise every item with its own draw; (outputs, CPU seconds, audio seconds)."""
    from faceveil.voice import VoiceConfig, disguise_voice

    folder.mkdir(parents=True)
    outputs: dict[str, Path] = {}
    cpu = audio = 0.0
    for index, item in enumerate(items):
        x = read_flac(item["path"])
        start = time.process_time()
        y = disguise_voice(x, RATE, VoiceConfig(**settings, seed=seed * 100_003 + index))
        cpu += time.process_time() - start
        audio += len(x) / RATE
        outputs[item["utt_id"]] = folder / f"{item['utt_id']}.wav"
        write_wav(outputs[item["utt_id"]], y)
    return outputs, cpu, audio


def judge(job: dict[str, Any], work: Path) -> dict[str, Any]:
    if not JUDGE_PYTHON.exists():
        raise SystemExit(f"no judge environment at {JUDGE_PYTHON}: run make bench-voice")
    job_file, result_file = work / "job.json", work / "result.json"
    job_file.write_text(json.dumps({**job, "cache": str(CACHE)}, default=str), encoding="utf-8")
    script = Path(__file__).with_name("voice_judge.py")
    subprocess.run([str(JUDGE_PYTHON), str(script), str(job_file), str(result_file)], check=True)
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="speech folder (manifest.json etc.)")
    parser.add_argument("--seed", type=int, default=1, help="seed of faceveil's draws in this run")
    parser.add_argument("--alpha", type=float, default=0.8, help="the McAdams baseline's fixed alpha")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "voice.json")
    parser.add_argument(
        "--wer-utterances",
        type=int,
        default=None,
        metavar="N",
        help="WER on the first N transcribed utterances only (quicker; default: all)",
    )
    parser.add_argument("--pitch", type=float, nargs=2, metavar=("MIN", "MAX"), help="faceveil's pitch range")
    parser.add_argument("--formant", type=float, nargs=2, metavar=("MIN", "MAX"), help="its formant range")
    parser.add_argument("--wobble", type=float, help="its slow pitch movement in semitones")
    parser.add_argument("--tilt", type=float, help="its colouring under 1 kHz in dB")
    parser.add_argument(
        "--keep-spectrum", action="store_true", help="without its long-term spectrum normalisation"
    )
    args = parser.parse_args()
    settings = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in (
            ("pitch", args.pitch),
            ("formant", args.formant),
            ("wobble", args.wobble),
            ("tilt_db", args.tilt),
            ("normalise", False if args.keep_spectrum else None),
        )
        if v is not None
    }
    items, transcripts = load_items(args.data)
    if args.wer_utterances is not None:
        transcripts = dict(list(transcripts.items())[: args.wer_utterances])
    enrol_items = [i for i in items if i["enrol"]]
    with tempfile.TemporaryDirectory(prefix="faceveil-voice-bench-") as tmp:
        work = Path(tmp)
        trial, fv_cpu, seconds = run_faceveil(items, work / "faceveil-trial", args.seed, settings)
        enrol, _, _ = run_faceveil(enrol_items, work / "faceveil-enrol", args.seed + 7919, settings)
        (work / "mcadams").mkdir()
        mcadams = {i["utt_id"]: work / "mcadams" / f"{i['utt_id']}.wav" for i in items}
        original = {i["utt_id"]: i["path"] for i in items}
        sets = {"original": original, "mcadams": mcadams, "faceveil": trial, "faceveil-enrol": enrol}
        paths = sorted({str(p) for s in sets.values() for p in s.values()})
        asr_paths = [str(s[u]) for s in (original, mcadams, trial) for u in transcripts]
        pairs = [[str(i["path"]), str(mcadams[i["utt_id"]])] for i in items]
        result = judge(
            {"embed": paths, "asr": asr_paths, "mcadams": {"alpha": args.alpha, "pairs": pairs}}, work
        )
        vectors = {name: {u: result["embed"][str(p)] for u, p in s.items()} for name, s in sets.items()}
        asr = {
            name: {u: result["asr"][str(sets[name][u])] for u in transcripts}
            for name in ("original", "mcadams", "faceveil")
        }
    rows = {
        "original": {
            "eer_ignorant": trial_eer(items, vectors["original"], vectors["original"]),
            "eer_lazy": None,
            "wer": pooled_wer(transcripts, asr["original"]),
            "x_realtime": None,
        },
        f"mcadams alpha {args.alpha:g}": {
            "eer_ignorant": trial_eer(items, vectors["original"], vectors["mcadams"]),
            "eer_lazy": trial_eer(items, vectors["mcadams"], vectors["mcadams"]),
            "wer": pooled_wer(transcripts, asr["mcadams"]),
            "x_realtime": seconds / result["mcadams_cpu_s"],
        },
        "faceveil default": {
            "eer_ignorant": trial_eer(items, vectors["original"], vectors["faceveil"]),
            "eer_lazy": trial_eer(items, vectors["faceveil-enrol"], vectors["faceveil"]),
            "wer": pooled_wer(transcripts, asr["faceveil"]),
            "x_realtime": seconds / fv_cpu,
        },
    }
    report(rows, args, seconds, settings, len(transcripts))


def report(
    rows: dict[str, dict[str, float | None]],
    args: argparse.Namespace,
    seconds: float,
    settings: dict[str, Any],
    wer_utterances: int,
) -> None:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    print(f"voice benchmark on {args.data} ({seconds / 60:.1f} min of speech), seed {args.seed}")
    print(f"faceveil settings: {settings or 'defaults'}; WER over {wer_utterances} utterances")
    print(f"{'system':<22}{'EER ignorant':>14}{'EER lazy-inf.':>15}{'WER':>9}{'x real time':>13}")
    for name, row in rows.items():
        speed = "-" if row["x_realtime"] is None else f"{row['x_realtime']:.0f}x"
        print(
            f"{name:<22}{pct(row['eer_ignorant']):>14}{pct(row['eer_lazy']):>15}{pct(row['wer']):>9}{speed:>13}"
        )
    original_wer = rows["original"]["wer"] or 0.0
    fv = rows["faceveil default"]
    checks = {
        "EER ignorant >= 40%": (fv["eer_ignorant"] or 0) >= 0.40,
        "EER lazy-informed >= 30%": (fv["eer_lazy"] or 0) >= 0.30,
        "WER <= original + 15 points": (fv["wer"] or 1) <= original_wer + 0.15,
        ">= 50x real time on one core": (fv["x_realtime"] or 0) >= 50,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"rows": rows, "checks": checks, "seed": args.seed, "settings": settings}, indent=1),
        encoding="utf-8",
    )
    print(f"results written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

# Two commands do everything on a fresh machine:
#   make run    build the environment, then start the web app on http://127.0.0.1:8000/
#   make test   build the environment (and the system packages the tests need), then run ruff, mypy and pytest
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.faceveil-synced
RAY_STAMP := $(VENV)/.faceveil-ray-synced
SAMPLE := src/faceveil/samples/grace_hopper.jpg

.PHONY: env env-ray sysdeps run sample test lint typecheck unit bench bench-video bench-x264 bench-start bench-stream bench-load bench-pose bench-cluster bench-voice bench-voice-live eval clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $(STAMP)

env: $(STAMP)

# the optional Ray extra (faceveil[ray]) on top: the tests and the cluster benchmark need it, `make run` does not
$(RAY_STAMP): $(STAMP)
	$(UV) sync --frozen --inexact --compile-bytecode --extra ray --python $(PYTHON)
	touch $(RAY_STAMP)

env-ray: $(RAY_STAMP)

run: env
	$(VENV)/bin/faceveil serve

sample: env
	mkdir -p out
	$(VENV)/bin/faceveil image $(SAMPLE) -o out/grace_hopper.anonymized.jpg --json out/grace_hopper.json
	@echo "anonymized sample written to out/grace_hopper.anonymized.jpg (faces: out/grace_hopper.json)"

lint: env
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

typecheck: env-ray
	$(VENV)/bin/mypy

unit: env-ray sysdeps
	$(VENV)/bin/pytest

sysdeps:
	./scripts/system-deps.sh

test: sysdeps lint typecheck unit

bench: env
	$(VENV)/bin/python benchmarks/photo_bench.py

bench-load: env
	$(VENV)/bin/python benchmarks/service_load.py

bench-stream: env
	$(VENV)/bin/python benchmarks/stream_bench.py
	$(VENV)/bin/python benchmarks/stream_bench.py --capacity

bench-pose: env
	$(VENV)/bin/python benchmarks/pose_bench.py

bench-cluster: env-ray sysdeps
	$(VENV)/bin/python benchmarks/cluster_bench.py

eval: env
	$(VENV)/bin/faceveil eval ../shared/data/wider_dev/annotations.json
	$(VENV)/bin/faceveil eval ../shared/data/mask_dev/annotations.json

clean:
	rm -rf $(VENV) $(TOOLS) out .pytest_cache .mypy_cache .ruff_cache

# deface 1.5.0 in a throwaway environment, only for the video benchmark's reference figures
.bench/deface/bin/deface:
	$(PYTHON) -m venv .bench/deface
	.bench/deface/bin/pip install --quiet "deface==1.5.0" "onnxruntime>=1.19,<1.24" "onnx>=1.16,<1.20"

bench-video: env .bench/deface/bin/deface
	$(VENV)/bin/python benchmarks/video_stages.py
	$(VENV)/bin/python benchmarks/video_bench.py

bench-x264: env
	$(VENV)/bin/python benchmarks/x264_settings.py

bench-start: env .bench/deface/bin/deface
	$(VENV)/bin/python benchmarks/start_bench.py

# the voice benchmark's judges (resemblyzer's GE2E attacker, pocketsphinx) in a throwaway environment;
# torch comes with resemblyzer. setuptools below 81 keeps pkg_resources, which webrtcvad imports.
.bench/voice/bin/python:
	$(PYTHON) -m venv .bench/voice
	.bench/voice/bin/pip install --quiet "resemblyzer==0.1.4" "pocketsphinx==5.1.1" "librosa>=0.10,<0.11" \
		"soundfile>=0.12,<1" "setuptools>=70,<81"

bench-voice: env .bench/voice/bin/python
	$(VENV)/bin/python benchmarks/voice_bench.py

# the live voice disguise: CPU per second of stereo 48 kHz audio and added latency (no judges needed)
bench-voice-live: env
	$(VENV)/bin/python benchmarks/voice_live_bench.py

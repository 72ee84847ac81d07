"""The OpenAPI schema fuzzed with schemathesis: whatever is sent, the answer is never a 5xx."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from faceveil.service.app import create_app
from faceveil.service.settings import ServiceSettings
from service_support import FakeRunner, fake_detectors

_DATA = Path(tempfile.mkdtemp(prefix="faceveil-fuzz-"))
atexit.register(shutil.rmtree, _DATA, True)  # made at collection, so removed at exit
APP = create_app(
    ServiceSettings(data_dir=_DATA, allowed_hosts=("testserver", "localhost")),
    runner=FakeRunner(),
    detector_factory=fake_detectors,
)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
# valid requests and invalid ones (wrong types, missing values, out-of-range options)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) == {"code", "message"}, body

"""The audit log: one JSON line per action (who, what, which job, input size and hash).

Never image data, never file names chosen by the client beyond the job's display name's length
limit, never the access secret.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class AuditLog:
    """Append-only JSON lines, safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def record(
        self,
        action: str,
        *,
        client: str | None,
        principal: str,
        job_id: str | None = None,
        input_bytes: int | None = None,
        input_sha256: str | None = None,
        **extra: Any,
    ) -> None:
        """Append one entry. ``extra`` holds small scalar facts (status, faces, reason)."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            + f".{int(time.time() * 1000) % 1000:03d}Z",
            "client": client,
            "principal": principal,
            "action": action,
        }
        if job_id is not None:
            entry["job_id"] = job_id
        if input_bytes is not None:
            entry["input_bytes"] = input_bytes
        if input_sha256 is not None:
            entry["input_sha256"] = input_sha256
        entry.update({k: v for k, v in extra.items() if isinstance(v, str | int | float | bool) or v is None})
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)

"""Copies of checkpoints kept outside the database: an append-only directory.

Each checkpoint is one JSON file, created exclusively and never rewritten. In
production the directory is a mount the database's operators cannot write (a WORM
bucket, another host); ``mfc audit verify`` reads it to catch a log that was
rewritten together with its own stored checkpoints.
"""

import json
import os
from pathlib import Path

from audit.domain.checkpoint import Checkpoint


class CheckpointDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, checkpoint: Checkpoint) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = checkpoint.issued_at.strftime("%Y%m%dT%H%M%S%fZ")
        target = (
            self.path / f"{checkpoint.tree_size:012d}-{stamp}-{checkpoint.key_id}.json"
        )
        data = (json.dumps(checkpoint.to_json(), sort_keys=True) + "\n").encode()
        # O_EXCL: an existing copy is never overwritten.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    def read(self) -> list[Checkpoint]:
        """Every copy, oldest tree first. Raises ValueError naming a bad file."""
        if not self.path.is_dir():
            return []
        found = []
        for file in sorted(self.path.glob("*.json")):
            try:
                found.append(Checkpoint.from_json(json.loads(file.read_text())))
            except (ValueError, json.JSONDecodeError) as exc:
                raise ValueError(f"{file}: {exc}") from exc
        return found

"""What every stage receives: the episode, the settings, and a progress callback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline import db, storage
from pipeline.config import Settings
from pipeline.jobs import workers
from pipeline.media import MediaInfo


@dataclass
class StageContext:
    settings: Settings
    episode_id: str
    options: dict
    progress: Callable[[float], None]   # 0..1 within the stage; raises Cancelled when asked to stop

    @property
    def episode_dir(self) -> Path:
        return storage.episode_dir(self.settings.data_dir, self.episode_id)

    @property
    def scratch(self) -> Path:
        """This process's scratch folder: outputs are written here, then ``storage.publish``-ed."""
        return workers.scratch_dir(self.settings)

    def episode(self):
        with db.session(self.settings.app_db) as conn:
            return db.get_episode(conn, self.episode_id)

    def transcript_path(self, fmt: str = "json") -> Path:
        return storage.transcript_path(self.settings.data_dir, self.episode_id, fmt)

    def media(self) -> MediaInfo:
        return MediaInfo(**json.loads(self.episode()["media_json"]))

    def source_path(self) -> Path:
        return self.episode_dir / self.episode()["source_path"]

    def write(self, fn, *args) -> None:
        """Run one db write function in a short transaction, with the current time appended."""
        with db.session(self.settings.app_db) as conn, db.transaction(conn):
            fn(conn, *args, time.time())

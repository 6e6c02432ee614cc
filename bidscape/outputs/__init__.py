"""Run folders: the manifest and its states, the writer's lock, the recorder and its tables."""

from bidscape.outputs.lock import FolderLock, FolderLocked, is_locked
from bidscape.outputs.manifest import MANIFEST_FILE, RunManifest, RunState, has_manifest, is_auction_run, run_state
from bidscape.outputs.tables import read_table, seal

__all__ = ["FolderLock", "FolderLocked", "MANIFEST_FILE", "RunManifest", "RunState", "has_manifest", "is_auction_run",
           "is_locked", "read_table", "run_state", "seal"]

"""Arrow tables of a run folder, readable after a kill.

A run writes each table as an Arrow IPC file (Feather v2), one record batch at a time,
straight to disk. The file format is the stream format behind an 8-byte magic, with a footer
(the index of batches) added at close. So a table whose writer was killed has every batch it
finished on disk, only no footer: ``read_table`` reads it as a stream (stopping before a batch
cut off mid-write) and ``seal`` rewrites it as a proper file, which ``polars.scan_ipc`` and
``pyarrow.ipc.open_file`` read again. A complete run pays nothing for this: its files are
closed once, as before (a stream-then-convert layout would rewrite every table at the end).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.ipc as ipc

MAGIC = b"ARROW1"
_STREAM_START = 8  # the magic, padded to 8 bytes
WRITE_OPTIONS = ipc.IpcWriteOptions(compression="zstd")


def is_sealed(path: Path) -> bool:
    """True for a finished IPC file (it ends with its footer and the magic)."""
    with open(path, "rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            return False
        file.seek(0, os.SEEK_END)
        if file.tell() < 2 * _STREAM_START:
            return False
        file.seek(-len(MAGIC), os.SEEK_END)
        return file.read(len(MAGIC)) == MAGIC


def whole_batches(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and the record batches of a table, sealed or not (a cut-off last batch is left out)."""
    source = pa.memory_map(str(path))
    if is_sealed(path):
        reader = ipc.open_file(source)
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    try:
        stream = ipc.open_stream(source.read_buffer().slice(_STREAM_START))
    except (pa.ArrowInvalid, OSError, ValueError) as error:
        raise ValueError(f"'{path}' holds no readable Arrow data ({error})") from None

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                yield stream.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError):  # the batch being written when the process died
                return

    return stream.schema, batches()


def read_table(path: str | Path, rows: Optional[int] = None) -> pa.Table:
    """A table of a run folder in any state (complete, running or interrupted); at most ``rows`` rows."""
    schema, batches = whole_batches(Path(path))
    table = pa.Table.from_batches(list(batches), schema=schema)
    return table if rows is None else table.slice(0, rows)


def seal(path: str | Path, rows: Optional[int] = None) -> int:
    """Rewrite the unsealed table at ``path`` as an IPC file of its first ``rows`` rows
    (all whole batches when None), atomically, batch by batch; return the rows kept."""
    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    schema, batches = whole_batches(path)
    kept = 0
    with ipc.new_file(str(part), schema, options=WRITE_OPTIONS) as writer:
        for batch in batches:
            if rows is not None and kept + batch.num_rows > rows:
                batch = batch.slice(0, rows - kept)
            if batch.num_rows:
                writer.write_batch(batch)
                kept += batch.num_rows
            if rows is not None and kept >= rows:
                break
    os.replace(part, path)
    return kept


def count_rows(path: Path) -> int:
    """Rows of a sealed table, from its batch headers (no column is decompressed)."""
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).count_rows()

"""Results as a Parquet table (``classify --parquet FILE``): one row per video, for data tools.

Columns: ``video``, ``status``, ``label``, ``probability``, ``error``, ``seconds`` (the fields a
query filters on) and ``result``, the video's whole JSON object as ``--jsonl`` writes it. The file
is written once, when the run ends (also when it fails or is interrupted: the videos finished by
then), atomically; a run with ``--skip-existing`` keeps the rows already there and adds its own
after them, as ``--jsonl`` appends. For a file that grows line by line while a run goes, use
``--jsonl``. Needs pyarrow, which ``pip install actionpipe[ray]`` brings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import atomic_path, dumps, parse_json

_FIELDS = {"video": "string", "status": "string", "label": "string", "probability": "float64",
           "error": "string", "seconds": "float64"}


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ActionpipeError(None, "--parquet needs pyarrow, which is not installed: "
                                    "pip install 'actionpipe[ray]'") from None
    return pyarrow


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The result objects of a Parquet file written by :class:`ParquetResults`."""
    pa = _pyarrow()
    try:
        table = pa.parquet.read_table(path, columns=["result"])
        return [parse_json(text) for text in table.column("result").to_pylist()]
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise ActionpipeError(path, f"not a results Parquet file ({str(exc).splitlines()[0]}); "
                                    "refusing to replace it (give another --parquet file)") from None


class ParquetResults:
    """Collects result objects; :meth:`close` writes them after the rows already in ``path``."""

    def __init__(self, path: str | Path):
        self.pa = _pyarrow()
        self.path = Path(path)
        self.rows = read_results(self.path) if self.path.is_file() else []
        self.added = 0

    def done_videos(self, statuses: Iterable[str]) -> set[str]:
        """Real paths of the videos the file already holds a result of one of ``statuses`` for."""
        statuses = set(statuses)
        return {os.path.realpath(d["video"]) for d in self.rows if d.get("status") in statuses}

    def write(self, obj: dict[str, Any]) -> None:
        self.rows.append(obj)
        self.added += 1

    def close(self) -> None:
        """Write the file (nothing when no result was added: the file stays as it was)."""
        if not self.added:
            return
        pa = self.pa
        columns = {name: pa.array([row.get(name) for row in self.rows], type=kind) for name, kind in _FIELDS.items()}
        columns["result"] = pa.array([dumps(row) for row in self.rows], type="string")
        with atomic_path(self.path) as tmp:
            pa.parquet.write_table(pa.table(columns), tmp)

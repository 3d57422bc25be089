"""Reading a dataset the user names (CSV or Parquet) as a DataFrame: contracts, gates and
targets read their tables here, with one error for a missing or unreadable file."""

from __future__ import annotations

from pathlib import Path

from kit.errors import SpecError

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


def read_table(path: Path):
    import pandas as pd

    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SpecError(f"{path}: cannot read {path.suffix or 'a file without extension'} as a table; "
                        f"use one of {', '.join(READERS)}")
    if not path.is_file():
        raise SpecError(f"{path}: no such data file")
    try:
        return getattr(pd, reader)(path)
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                        "save the file as UTF-8") from None
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        raise SpecError(f"{path}: cannot read as {path.suffix[1:]}: {type(exc).__name__}: {exc}") from None

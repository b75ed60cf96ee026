"""The offline copy of the events: Parquet per contract table, partitioned by customer hash.

The transactional store (:mod:`features.store`) answers requests: a few customers, by
index. Batch work — cold batch scoring, training snapshots — reads *every* customer, and
reading every row of SQLite through Python was the cost of it (1,000,000 customers: 406
of 773 s). The offline copy holds the same events, columnar, laid out for that read::

    ROOT/_offline.json                                      buckets, format
    ROOT/<table>/customer_bucket=NNN/part-<token>.parquet   one file per write and bucket

A customer's bucket is ``crc32(customer_id, UTF-8) % buckets`` (stable across processes,
machines and versions), so all of a customer's events in every table sit in the same
bucket and a bucket is an independent unit of work (:class:`OfflineEvents`). Files are
written whole under a temporary name and renamed, so a reader never sees half a file;
every write adds files (:func:`write_offline` is append-only, for ingest batches), and a
bucket's files are read together and sorted by customer, date, id, as the store reads.

Why not also by month: every read needs a customer's whole history before ``as_of``
(the features look back 24 months), so a month split would multiply the files by the
months held and prune only the events after ``as_of``. The choice of reader and its
figures are in ``docs/offline-store.md``.

Which events the copy holds is checked against the store by :func:`check_offline`
(counts and an order-independent checksum per table); :func:`sync_offline` rewrites the
copy from the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from features.schemas import TABLES
from features.tables import DATE, NULLABLE_INT, STR, TABLE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

    from features.store import EventStore

__all__ = [
    "DEFAULT_BUCKETS",
    "OfflineCheck",
    "OfflineEvents",
    "OfflineMismatch",
    "TableCheck",
    "bucket_of",
    "check_offline",
    "compact_offline",
    "sync_offline",
    "write_offline",
]

#: Buckets of a new copy: ~15,000 customers each at 1,000,000 (a partition large enough
#: that per-call overheads vanish, small enough that a worker holds a few at once).
DEFAULT_BUCKETS: Final = 64
FORMAT: Final = 1
META_FILE: Final = "_offline.json"
BUCKET_DIR: Final = "customer_bucket={:03d}"


def bucket_of(customer_ids: Sequence[str] | np.ndarray, buckets: int) -> np.ndarray:
    """The bucket (``crc32`` of the UTF-8 id, modulo ``buckets``) of each customer id."""
    import pyarrow as pa

    from features.offline_order import crc32_utf8

    if buckets < 1:
        raise ValueError(f"buckets must be >= 1; got {buckets}")
    ids = pa.array([str(c) for c in customer_ids], pa.string())
    return (crc32_utf8(ids) % np.uint32(buckets)).astype(np.int64)


def _sort_keys(table: str) -> list[str]:
    """The read order of ``table``: customer, date, id (:func:`features.tables.read_order`)."""
    _, pk, date_col = TABLES[table]
    return ["customer_id"] if pk == "customer_id" else ["customer_id", date_col, pk]


def _arrow_schema(table: str) -> pa.Schema:
    import pyarrow as pa

    types = {STR: pa.string(), DATE: pa.date32()}
    return pa.schema(
        [
            pa.field(name, types.get(kind, pa.int64()), nullable=nullable)
            for name, (kind, nullable) in TABLE_COLUMNS[table].items()
        ]
    )


def _to_arrow(table: str, df: pd.DataFrame) -> pa.Table:
    """A contract frame (pandas dtypes as pandera or the simulator give them) as Arrow in
    the copy's schema: strings, ``date32`` days, ``int64`` (null where nullable)."""
    import pyarrow as pa

    arrays = []
    for name, (kind, _nullable) in TABLE_COLUMNS[table].items():
        col = df[name]
        if kind == DATE:
            days = pd.to_datetime(col).to_numpy().astype("datetime64[D]")
            arrays.append(pa.array(days, type=pa.date32(), from_pandas=True))
        elif kind == STR:
            # pandas' str columns are Arrow already: no Python object per value.
            arrays.append(pa.Array.from_pandas(col).cast(pa.string()))
        elif kind == NULLABLE_INT:
            arrays.append(pa.array(col.astype("Int64"), type=pa.int64(), from_pandas=True))
        else:
            arrays.append(pa.array(col.to_numpy(dtype=np.int64), type=pa.int64()))
    return pa.Table.from_arrays(arrays, schema=_arrow_schema(table))


class OfflineEvents:
    """Reads an offline copy at ``root`` bucket by bucket (see the module doc).

    Cheap to create and to pickle (it holds the path and the bucket count), so a worker
    process or a Dask task opens its own.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        meta_path = self.root / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"no offline copy at {self.root}: {META_FILE} missing; write one with "
                "`tijdig offline sync` (or set TIJDIG_OFFLINE_DIR before ingesting)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT}")
        self.n_buckets: int = int(meta["buckets"])

    def __repr__(self) -> str:
        return f"OfflineEvents({str(self.root)!r}, buckets={self.n_buckets})"

    @property
    def buckets(self) -> list[int]:
        """The buckets that hold at least one customer, ascending."""
        base = self.root / "customers"
        return [b for b in range(self.n_buckets) if _files(base / BUCKET_DIR.format(b))]

    def _bucket_table(
        self,
        table: str,
        bucket: int,
        columns: Sequence[str] | None = None,
        dictionary: Sequence[str] | None = None,
    ) -> Any:
        """One table of one bucket as a sorted Arrow table (all its files together);
        ``dictionary`` columns come back dictionary-encoded, as stored."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = _files(self.root / table / BUCKET_DIR.format(bucket))
        full = _arrow_schema(table)
        wanted = list(full.names) if columns is None else list(columns)
        keys = _sort_keys(table)
        # Appended batches: each file is sorted, their union is not, so the sort keys are
        # read too.
        names = wanted + [k for k in keys if k not in wanted] if len(files) > 1 else wanted
        schema = pa.schema([full.field(c) for c in names])
        if not files:
            return schema.empty_table()
        if dictionary and len(files) > 1:
            dictionary = None  # one sort over plain strings, then as usual
        parts = [
            pq.ParquetFile(f, read_dictionary=dictionary).read(columns=names, use_threads=False)
            for f in files
        ]
        if len(parts) == 1:
            return parts[0]
        arrow = pa.concat_tables(parts).sort_by([(k, "ascending") for k in keys])
        return arrow.select(wanted)

    def read_bucket(
        self, bucket: int, tables: Sequence[str] | None = None
    ) -> dict[str, pd.DataFrame]:
        """The events of ``bucket``'s customers as :meth:`EventStore.read_frames
        <features.store.EventStore.read_frames>` returns them for those customers: same
        columns, dtypes and order (customer, date, id)."""
        from features.store import _to_frame

        out: dict[str, pd.DataFrame] = {}
        for table in _tables(tables):
            arrow = self._bucket_table(table, bucket)
            out[table] = _to_frame(table, _raw_columns(table, arrow))
        return out

    def read_bucket_columns(
        self, bucket: int, columns: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The batch path: per table, column -> array, for :meth:`EventArrays.from_columns
        <features.events.EventArrays.from_columns>` without pandas. Strings stay Arrow
        arrays (no Python object per value), dates are ``datetime64[D]`` (NaT for null),
        nullable ints ``float64`` (NaN), ints ``int64``. ``columns`` (default: what
        ``from_columns`` reads, :data:`features.events.COLUMNS_USED`) per table."""
        import pyarrow as pa

        from features.events import COLUMNS_USED

        wanted = COLUMNS_USED if columns is None else columns
        out: dict[str, dict[str, Any]] = {}
        for table in TABLES:
            arrow = self._bucket_table(
                table, bucket, wanted[table], [c for c in wanted[table] if c in _DICTIONARY]
            )
            cols: dict[str, Any] = {}
            for name in arrow.column_names:
                kind = TABLE_COLUMNS[table][name][0]
                col = arrow.column(name)
                if kind == STR:
                    cols[name] = col if col.num_chunks else pa.array([], pa.string())
                elif kind == DATE:
                    cols[name] = col.to_numpy().astype("datetime64[D]", copy=False)
                else:
                    cols[name] = col.to_numpy()
            out[table] = cols
        return out

    def customer_ids(self, bucket: int) -> list[str]:
        """The customer ids of ``bucket``, sorted."""
        arrow = self._bucket_table("customers", bucket, ["customer_id"])
        return [str(c) for c in arrow.column("customer_id").to_pylist()]

    def count(self) -> int:
        """How many customers the copy holds (from the Parquet footers)."""
        return self.count_rows("customers")

    def count_rows(self, table: str) -> int:
        """How many rows ``table`` holds (from the Parquet footers)."""
        import pyarrow.parquet as pq

        return sum(
            pq.ParquetFile(f).metadata.num_rows
            for b in range(self.n_buckets)
            for f in _files(self.root / table / BUCKET_DIR.format(b))
        )


#: String columns with few distinct values per bucket (a customer's id repeats over their
#: events; the rest are enums): stored and read dictionary-encoded, so the batch path looks
#: each distinct value up once.
_DICTIONARY: Final = frozenset(
    {
        "customer_id",
        "household_type",
        "product",
        "result",
        "reason_code",
        "step",
        "outcome",
        "source",
        "method",
        "collection_method",
    }
)


def _tables(tables: Sequence[str] | None) -> list[str]:
    if tables is None:
        return list(TABLES)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise KeyError(f"unknown tables {unknown}; known: {', '.join(TABLES)}")
    return list(tables)


def _files(directory: Path) -> list[Path]:
    """The finished Parquet files of a bucket directory, in write order (temporary files
    start with a dot and are not read)."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".parquet" and not p.name.startswith(".")
    )


def _raw_columns(table: str, arrow: Any) -> dict[str, Any]:
    """Arrow columns in the store's raw decoded form (``features.store._to_frame``'s input):
    strings as Arrow, dates as days (float64 with NaN where nullable), nullable ints as
    float64 with NaN."""
    import pyarrow as pa

    raw: dict[str, Any] = {}
    for name, (kind, nullable) in TABLE_COLUMNS[table].items():
        col = arrow.column(name)
        if kind == STR:
            raw[name] = col
            continue
        if kind == DATE:
            col = col.cast(pa.int32())
        values = col.to_numpy()
        raw[name] = values.astype(np.float64 if nullable else np.int64)
    return raw


# --------------------------------------------------------------------------- writing


def _read_meta(root: Path) -> dict[str, Any] | None:
    path = root / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _ensure_meta(root: Path, buckets: int | None) -> int:
    """The copy's bucket count: recorded, or recorded now (``buckets`` or the default)."""
    meta = _read_meta(root)
    if meta is not None:
        if buckets is not None and int(meta["buckets"]) != buckets:
            raise ValueError(
                f"{root} is partitioned into {meta['buckets']} buckets, not {buckets}; "
                "`tijdig offline sync --buckets N` rewrites it"
            )
        return int(meta["buckets"])
    n = DEFAULT_BUCKETS if buckets is None else int(buckets)
    if n < 1:
        raise ValueError(f"buckets must be >= 1; got {n}")
    root.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(
        root / META_FILE,
        json.dumps(
            {
                "format": FORMAT,
                "buckets": n,
                "bucket": "crc32(customer_id utf-8) % buckets",
                "tables": list(TABLES),
            },
            indent=1,
        )
        + "\n",
    )
    return n


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_offline(
    tables: Mapping[str, pd.DataFrame], root: Path, buckets: int | None = None
) -> dict[str, int]:
    """Append ``tables`` (contract frames, e.g. the rows an ingest stored) to the copy at
    ``root``, creating it with ``buckets`` (default :data:`DEFAULT_BUCKETS`) if new.

    Append-only: every call adds one file per table and bucket it has rows for, written
    under a temporary name and renamed, so concurrent readers see a batch's file whole or
    not at all. The caller sends each event once (ingest sends what it inserted, not the
    duplicates); :func:`check_offline` finds a copy that drifted. Returns rows written per
    table.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features.offline_order import crc32_utf8, write_order

    root = Path(root)
    n = _ensure_meta(root, buckets)
    token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    written: dict[str, int] = {}
    for table, df in tables.items():
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        if df is None or not len(df):
            continue
        arrow = _to_arrow(table, df)
        customers = arrow.column("customer_id").combine_chunks().dictionary_encode()
        distinct = customers.dictionary
        codes = customers.indices.to_numpy(zero_copy_only=False)
        # Bucket each distinct customer once, and rank them in write order (bucket, id):
        # rows then sort on integers (features/offline_order.py).
        bucket_d = (crc32_utf8(distinct) % np.uint32(n)).astype(np.int64)
        by_bucket = pc.sort_indices(
            pa.table({"b": bucket_d, "id": distinct}), [("b", "ascending"), ("id", "ascending")]
        ).to_numpy()
        rank = np.empty(len(distinct), dtype=np.int64)
        rank[by_bucket] = np.arange(len(distinct))
        keys = _sort_keys(table)
        days = None
        if len(keys) > 1:
            date = arrow.column(keys[1]).combine_chunks().cast(pa.int32())
            if date.null_count:  # nulls last, as Arrow's sort puts them
                top = pc.max(date).as_py()
                date = pc.fill_null(date, 0 if top is None else top + 1)
            days = date.to_numpy(zero_copy_only=False)
        ids = arrow.column(keys[2]).combine_chunks() if len(keys) > 2 else None
        order = write_order(codes, rank, days, ids)
        sorted_codes = codes[order]
        take = pa.array(order)
        arrow = pa.Table.from_arrays(
            [
                # The ids from the distinct values: reads 100,000 strings, not 17 M at random.
                distinct.take(pa.array(sorted_codes))
                if name == "customer_id"
                else arrow.column(name).combine_chunks().take(take)
                for name in arrow.column_names
            ],
            schema=arrow.schema,
        )
        bucket = bucket_d[sorted_codes]
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(bucket)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            directory = root / table / BUCKET_DIR.format(int(bucket[s]))
            directory.mkdir(parents=True, exist_ok=True)
            final = directory / f"part-{token}.parquet"
            tmp = directory / f".part-{token}.parquet.tmp"
            part = arrow.slice(s, e - s)
            pq.write_table(
                part,
                tmp,
                # lz4: decoding costs a third of zstd's CPU at about snappy's size
                # (docs/offline-store.md)
                compression="lz4",
                use_dictionary=[c for c in part.column_names if c in _DICTIONARY],
            )
            os.replace(tmp, final)
        written[table] = arrow.num_rows
    return written


def compact_offline(root: Path) -> int:
    """Rewrite every bucket of the copy at ``root`` that holds several files (one per
    append) as one sorted file; returns the files removed.

    A bucket of one file is read dictionary-encoded and without a sort (at 1,000,000
    customers in 10 appends the read took 2.5x as long per customer). Run it when no batch
    reads the copy: a reader listing a bucket between the new file's rename and the old
    files' removal would read both. :func:`sync_offline` compacts its new copy before
    swapping it in.
    """
    import pyarrow.parquet as pq

    root = Path(root)
    offline = OfflineEvents(root)
    token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    removed = 0
    for table in TABLES:
        for b in range(offline.n_buckets):
            directory = root / table / BUCKET_DIR.format(b)
            files = _files(directory)
            if len(files) < 2:
                continue
            arrow = offline._bucket_table(table, b)
            tmp = directory / f".part-{token}.parquet.tmp"
            pq.write_table(
                arrow,
                tmp,
                compression="lz4",
                use_dictionary=[c for c in arrow.column_names if c in _DICTIONARY],
            )
            os.replace(tmp, directory / f"part-{token}.parquet")
            for f in files:
                f.unlink()
            removed += len(files)
    return removed


def sync_offline(
    store: EventStore,
    root: Path,
    *,
    buckets: int | None = None,
    partition_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Rewrite the copy at ``root`` from every event in ``store``.

    Reads the store in customer partitions (memory stays one partition's) into a new
    folder beside ``root``, then swaps it in: a reader sees the old copy or the new one.
    ``buckets`` defaults to the old copy's count, else :data:`DEFAULT_BUCKETS`. Returns
    rows written per table.
    """
    root = Path(root)
    old = _read_meta(root)
    n = buckets if buckets is not None else (int(old["buckets"]) if old else DEFAULT_BUCKETS)
    fresh = root.with_name(f".{root.name}.sync-{uuid.uuid4().hex[:8]}")
    total = store.count("customers")
    written = dict.fromkeys(TABLES, 0)
    done = 0
    try:
        _ensure_meta(fresh, n)
        for ids in store.iter_customer_partitions(partition_size):
            for table, rows in write_offline(store.read_frames(ids), fresh).items():
                written[table] += rows
            done += len(ids)
            if progress:
                progress(done, total)
        if progress and not total:
            progress(0, 0)
        compact_offline(fresh)
        retired = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
        if root.exists():
            os.replace(root, retired)
        os.replace(fresh, root)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return written


# --------------------------------------------------------------------------- checking


@dataclass
class TableCheck:
    """One table in both copies: rows and an order-independent checksum of the rows."""

    table: str
    store_rows: int
    offline_rows: int
    store_checksum: str
    offline_checksum: str

    @property
    def ok(self) -> bool:
        return self.store_rows == self.offline_rows and self.store_checksum == self.offline_checksum

    def describe(self) -> str:
        if self.ok:
            return f"{self.table}: {self.store_rows:,} rows, same events"
        if self.store_rows != self.offline_rows:
            diff = self.offline_rows - self.store_rows
            return (
                f"{self.table}: store {self.store_rows:,} rows, offline copy "
                f"{self.offline_rows:,} ({diff:+,})"
            )
        return (
            f"{self.table}: {self.store_rows:,} rows in both, but different content "
            f"(checksum store {self.store_checksum}, offline {self.offline_checksum})"
        )


@dataclass
class OfflineCheck:
    """What :func:`check_offline` found, per table."""

    tables: list[TableCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def mismatched(self) -> list[str]:
        return [t.table for t in self.tables if not t.ok]

    def summary(self) -> str:
        if self.ok:
            rows = sum(t.store_rows for t in self.tables)
            return f"offline copy holds the same events as the store ({rows:,} rows)"
        return "offline copy differs from the store: " + "; ".join(
            t.describe() for t in self.tables if not t.ok
        )


class OfflineMismatch(RuntimeError):
    """The offline copy does not hold the store's events (see :class:`OfflineCheck`)."""

    def __init__(self, check: OfflineCheck):
        super().__init__(check.summary())
        self.check = check


class _Checksum:
    """An order-independent digest of rows: the sum modulo 2**64 of a 64-bit hash of each
    row's canonical text, plus the row count. Same events in any order, same digest."""

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, table: str, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        hashed = pd.util.hash_pandas_object(_canonical(table, frame), index=False)
        self.total = (self.total + int(hashed.to_numpy(np.uint64).sum(dtype=np.uint64))) % 2**64
        self.rows += len(frame)

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.rows}:{self.total}".encode()).hexdigest()[:16]


def _canonical(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``frame`` as one canonical text per row (nulls as empty), so two
    frames of the same rows hash the same whatever their dtypes."""
    parts = []
    for name in TABLE_COLUMNS[table]:
        parts.append(frame[name].astype(str).where(frame[name].notna(), "").to_numpy(object))
    text = parts[0]
    for p in parts[1:]:
        text = text + "\x1f" + p
    return pd.DataFrame({"row": text})


def check_offline(
    store: EventStore,
    root: Path,
    *,
    partition_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> OfflineCheck:
    """Compare the copy at ``root`` with ``store``: rows and checksum per table.

    Reads both in full (the store in customer partitions, the copy bucket by bucket), so
    it costs about what a sync does; a missing, extra or changed event shows as the table
    whose count or checksum differs.
    """
    offline = OfflineEvents(root)
    store_sums = {t: _Checksum() for t in TABLES}
    total = store.count("customers")
    done = 0
    for ids in store.iter_customer_partitions(partition_size):
        for table, frame in store.read_frames(ids).items():
            store_sums[table].add(table, frame)
        done += len(ids)
        if progress:
            progress(done, 2 * total)
    offline_sums = {t: _Checksum() for t in TABLES}
    buckets = offline.buckets
    for i, b in enumerate(buckets):
        for table, frame in offline.read_bucket(b).items():
            offline_sums[table].add(table, frame)
        if progress:
            progress(total + (i + 1) * total // max(len(buckets), 1), 2 * total)
    # Events of customers whose customer row is missing sit in no listed bucket: count them.
    for table in TABLES:
        listed = set(buckets)
        for b in range(offline.n_buckets):
            if b in listed:
                continue
            frame = offline.read_bucket(b, [table])[table]
            offline_sums[table].add(table, frame)
    return OfflineCheck(
        [
            TableCheck(
                table=t,
                store_rows=store_sums[t].rows,
                offline_rows=offline_sums[t].rows,
                store_checksum=store_sums[t].hexdigest(),
                offline_checksum=offline_sums[t].hexdigest(),
            )
            for t in TABLES
        ]
    )

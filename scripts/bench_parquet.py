"""The pyarrow side of `lethe-bench parquet` (Benchmarks/ParquetBench), run with the project venv's Python.

  gen PATH ROWS_PER_GROUP GROUPS TARGET EVERY USERS   write the benchmark file; print JSON facts
  scan PATH RUNS THREADS                        time read_table(columns=["user_id"]) RUNS times
  erase SRC DST SUBJECT ROWS_PER_GROUP RUNS     time read_table → mask → write_table RUNS times
  check PATH SUBJECT                            rows, and rows of SUBJECT, as pyarrow reads them
"""
import json, sys, time
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

cmd = sys.argv[1]

if cmd == "gen":
    path, per, groups, target, every = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
    id_space = int(sys.argv[7])
    n = per * groups
    rng = np.random.default_rng(3)
    users = ["u-%08d" % x for x in rng.integers(0, id_space, n)]
    # TARGET: three rows, all in row group groups // 2; EVERY: one row in each row group.
    g = groups // 2
    for k in (11, per // 2, per - 5):
        users[g * per + k] = target
    for r in range(groups):
        users[r * per + 7 + (r * 131) % (per - 8)] = every
    base = np.datetime64("2026-01-01T00:00:00", "us")
    ts = base + np.cumsum(rng.integers(0, 2_000_000, n)).astype("timedelta64[us]")
    countries = np.array(["DE", "FR", "NL", "PL", "SE", "ES", "IT", "AT", "BE", "DK", "FI", "IE", "PT", "CZ", "GR"])
    devices = np.array(["ios", "android", "web", "tv", "watch"])
    amount = np.round(rng.uniform(0, 800, n), 2)
    t = pa.table({
        "user_id": pa.array(users, pa.string()),
        "event_id": pa.array(np.arange(n, dtype=np.int64) * 3 + 1_000_000),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "received_at": pa.array((ts + rng.integers(0, 5000, n).astype("timedelta64[ms]")).astype("datetime64[ms]"),
                                pa.timestamp("ms")),
        "session_id": pa.array(["%016x" % x for x in rng.integers(0, 2**63 - 1, n)], pa.string()),
        "amount": pa.array(amount, pa.float64(), mask=rng.random(n) < 0.05),
        "price": pa.array(np.round(rng.lognormal(3, 1, n), 2), pa.float64()),
        "lat": pa.array(rng.uniform(35, 70, n), pa.float64()),
        "lon": pa.array(rng.uniform(-10, 30, n), pa.float64()),
        "qty": pa.array(rng.integers(1, 20, n).astype(np.int32)),
        "score": pa.array(rng.random(n).astype(np.float32)),
        "country": pa.array(countries[rng.integers(0, len(countries), n)], pa.string()),
        "device": pa.array(devices[rng.integers(0, len(devices), n)], pa.string()),
        "url": pa.array(["/p/%d/item?ref=%s" % (a, b) for a, b in zip(rng.integers(0, 50_000, n), devices[rng.integers(0, 5, n)])],
                        pa.string()),
        "is_mobile": pa.array(rng.random(n) < 0.6),
    })
    pq.write_table(t, path, row_group_size=per, compression="snappy")
    md = pq.ParquetFile(path).metadata
    uc = [md.row_group(i).column(0) for i in range(md.num_row_groups)]
    print(json.dumps({
        "rows": md.num_rows, "row_groups": md.num_row_groups, "columns": md.num_columns,
        "subject_compressed": sum(c.total_compressed_size for c in uc),
        "subject_uncompressed": sum(c.total_uncompressed_size for c in uc),
        "distinct_users": pc.count_distinct(t["user_id"]).as_py(),
        "pyarrow": pa.__version__, "created_by": md.created_by,
    }))

elif cmd == "scan":
    path, runs, threads = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        t = pq.read_table(path, columns=["user_id"], use_threads=threads)
        times.append(time.perf_counter() - t0)
        assert t.num_rows > 0
    print(json.dumps(times))

elif cmd == "erase":
    src, dst, subject, per, runs = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        t = pq.read_table(src)
        keep = pc.invert(pc.fill_null(pc.equal(t["user_id"], subject), False))
        pq.write_table(t.filter(keep), dst, row_group_size=per, compression="snappy")
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))

elif cmd == "check":
    path, subject = sys.argv[2], sys.argv[3]
    t = pq.read_table(path)
    hits = pc.sum(pc.fill_null(pc.equal(t["user_id"], subject), False)).as_py() or 0
    print(json.dumps({"rows": t.num_rows, "subject_rows": hits, "row_groups": pq.ParquetFile(path).metadata.num_row_groups}))

"""The pyarrow side of `lethe-bench verified` (Benchmarks/VerifiedBench), run with the project venv's Python.

  parquet-gen PATH ROWS GROUPS USERS SEED
      Writes one Parquet file of ROWS events in GROUPS row groups (pyarrow defaults but
      row_group_size = ROWS / GROUPS, snappy): delta-bench's columns (user_id, event_id,
      event_ts, event_type, amount, country) plus session_id and page_url strings. User ids
      `u-NNNNNNN` drawn uniformly from USERS ids. Picks the subject: the user_id of the row at a
      seeded position. Prints facts as JSON (bytes, row groups, the subject and its rows).
  parquet-filter PATH ID ROWS_PER_GROUP
      The peer: read_table → filter(user_id != ID) → write_table(row_group_size, snappy) to a
      temporary next to PATH → fsync → os.replace. Prints the in-process seconds and rows.
  parquet-check PATH ID
      What pyarrow reads: rows, rows of ID, the sum of event_id (a fingerprint of the surviving rows).
"""
import json, os, sys, time

cmd = sys.argv[1]


def out(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


if cmd == "parquet-gen":
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path, rows, groups, users, seed = sys.argv[2], *map(int, sys.argv[3:7])
    assert rows % groups == 0, "rows must split evenly into row groups"
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    uid = rng.integers(0, users, rows)
    ids = pc.binary_join_element_wise("u-", pc.utf8_lpad(pc.cast(pa.array(uid), pa.string()), 7, "0"), "")
    types = np.array(["page_view", "click", "search", "add_to_cart", "purchase", "login", "share"])
    type_p = np.array([0.45, 0.25, 0.12, 0.08, 0.04, 0.04, 0.02])
    countries = np.array(["DE", "FR", "NL", "PL", "SE", "ES", "IT", "AT", "BE", "DK", "FI", "IE", "PT", "CZ", "GR", "US", "GB"])
    et = types[rng.choice(len(types), rows, p=type_p)]
    priced = (et == "purchase") | (et == "add_to_cart")
    ts = 1_767_225_600_000_000 + np.cumsum(rng.integers(0, 1_600_000, rows))
    # A session per user and day-ish: 12 hex digits, repeated within a run of events.
    session = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 2**40, rows // 4).repeat(4)), pa.string()), 13, "0")
    pages = np.array(["/p/%d" % i for i in range(20_000)])
    t = pa.table({
        "user_id": ids,
        "event_id": pa.array(np.arange(rows, dtype=np.int64)),
        "event_ts": pa.array(ts.astype(np.int64)),
        "event_type": pa.array(et, pa.string()),
        "amount": pa.array(np.round(rng.lognormal(3, 1, rows), 2), pa.float64(), mask=~priced),
        "country": pa.array(countries[rng.integers(0, len(countries), rows)], pa.string()),
        "session_id": session,
        "page_url": pa.array(pages[rng.integers(0, len(pages), rows)], pa.string()),
    })
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pq.write_table(t, path, row_group_size=rows // groups, compression="snappy")
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == groups, f"{md.num_row_groups} row groups, wanted {groups}"
    subject = t.column("user_id")[int(np.random.default_rng(seed + 1).integers(0, rows))].as_py()
    n = pc.sum(pc.equal(t.column("user_id"), subject)).as_py()
    out({"bytes": os.path.getsize(path), "rows": rows, "row_groups": md.num_row_groups,
         "distinct_users": pc.count_distinct(t.column("user_id")).as_py(), "subject": subject,
         "subject_rows": n, "seconds": time.perf_counter() - t0, "pyarrow": pa.__version__})

elif cmd == "parquet-filter":
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path, subject, per = sys.argv[2], sys.argv[3], int(sys.argv[4])
    t0 = time.perf_counter()
    t = pq.read_table(path)
    kept = t.filter(pc.not_equal(t.column("user_id"), subject))
    tmp = path + ".peer-tmp"
    pq.write_table(kept, tmp, row_group_size=per, compression="snappy")
    fd = os.open(tmp, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, path)
    secs = time.perf_counter() - t0
    out({"seconds": secs, "rows_before": t.num_rows, "rows_after": kept.num_rows,
         "dropped": t.num_rows - kept.num_rows, "pyarrow": pa.__version__})

elif cmd == "parquet-check":
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path, subject = sys.argv[2], sys.argv[3]
    t = pq.read_table(path, columns=["user_id", "event_id"])
    out({"rows": t.num_rows, "subject_rows": pc.sum(pc.equal(t.column("user_id"), subject)).as_py() or 0,
         "event_id_sum": pc.sum(t.column("event_id")).as_py() or 0,
         "row_groups": pq.ParquetFile(path).metadata.num_row_groups})

else:
    sys.exit(f"unknown command {cmd}")

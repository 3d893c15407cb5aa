"""The delta-rs side of `lethe-bench delta` (Benchmarks/DeltaBench): writes the benchmark
tables, runs delta-rs's own DELETE, and checks what delta-rs reads back.

  gen TABLE ROWS FILES GROUPS USERS SEED SUBJECTS
      Writes a Delta table of ROWS time-ordered events in FILES data files of GROUPS
      row groups each, one `write_deltalake` append per file (delta-rs writes the
      files, their statistics and its default checkpoint every 100 commits). User ids
      `u-NNNNNNN` are drawn uniformly from USERS ids, so a subject's few rows land in
      random files. Verifies the layout with pyarrow, picks SUBJECTS distinct user ids
      present in the table (deterministic: the ids of rows at seeded random positions)
      into TABLE/../subjects.json, and prints facts as JSON.
  delete TABLE SUBJECTS_JSON N
      DeltaTable(TABLE).delete("user_id IN (…)") for the first N subjects. Prints the
      time to open the table, the time of the delete call and delta-rs's metrics.
  vacuum TABLE
      DeltaTable(TABLE).vacuum(retention_hours=0, enforce_retention_duration=False):
      physically deletes the files the delete superseded. Prints its time.
  check TABLE SUBJECTS_JSON N
      What delta-rs reads at the latest version: rows, rows of the first N subjects,
      the sum of event_id (a fingerprint of which rows survive), live files.
"""
import json, os, sys, time


def out(obj):
    print(json.dumps(obj))


def subjects(path, n):
    with open(path) as f:
        return json.load(f)[:n]


def in_list(ids):
    return "user_id IN (" + ", ".join("'" + s.replace("'", "''") + "'" for s in ids) + ")"


cmd = sys.argv[1]

if cmd == "gen":
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import deltalake
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    table, rows, files, groups, users, seed, want = sys.argv[2], *map(int, sys.argv[3:9])
    per_file = rows // files
    assert per_file * files == rows and per_file % groups == 0, "rows must split evenly into files and row groups"
    per_group = per_file // groups
    rng = np.random.default_rng(seed)
    types = np.array(["page_view", "click", "search", "add_to_cart", "purchase", "login", "share"])
    type_p = np.array([0.45, 0.25, 0.12, 0.08, 0.04, 0.04, 0.02])
    countries = np.array(["DE", "FR", "NL", "PL", "SE", "ES", "IT", "AT", "BE", "DK", "FI", "IE", "PT", "CZ", "GR", "US", "GB"])
    props = WriterProperties(max_row_group_size=per_group, compression="SNAPPY")
    t0 = time.perf_counter()
    ts = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
    for i in range(files):
        n = per_file
        uid = rng.integers(0, users, n)
        ids = pc.binary_join_element_wise("u-", pc.utf8_lpad(pc.cast(pa.array(uid), pa.string()), 7, "0"), "")
        steps = np.cumsum(rng.integers(0, 2 * 86_400_000_000 * 30 // max(1, rows), n)) + ts  # ~30 days over the table
        ts = int(steps[-1])
        et = types[rng.choice(len(types), n, p=type_p)]
        priced = (et == "purchase") | (et == "add_to_cart")
        amount = pa.array(np.round(rng.lognormal(3, 1, n), 2), pa.float64(), mask=~priced)
        batch = pa.table({
            "user_id": ids,
            "event_id": pa.array(np.arange(i * per_file, (i + 1) * per_file, dtype=np.int64)),
            "event_ts": pa.array(steps.astype(np.int64)),
            "event_type": pa.array(et, pa.string()),
            "amount": amount,
            "country": pa.array(countries[rng.integers(0, len(countries), n)], pa.string()),
        })
        write_deltalake(table, batch, mode="append", writer_properties=props, target_file_size=1 << 40)
    gen_s = time.perf_counter() - t0

    # The layout as written: files in the latest version and the row groups of each.
    dt = DeltaTable(table)
    uris = dt.file_uris()
    rg = []
    size = 0
    for u in uris:
        p = u[7:] if u.startswith("file://") else u
        md = pq.ParquetFile(p).metadata
        rg.append(md.num_row_groups)
        size += os.path.getsize(p)
    assert len(uris) == files, f"wrote {len(uris)} files, wanted {files}"
    assert all(g == groups for g in rg), f"row groups per file {sorted(set(rg))}, wanted {groups}"
    col = dt.to_pyarrow_table(columns=["user_id"]).column("user_id")
    assert len(col) == rows
    # Subjects: the ids of rows at seeded random positions, first occurrences kept, in draw order.
    pick = np.random.default_rng(seed + 1).integers(0, rows, want * 4 + 64)
    chosen, seen = [], set()
    for r in pick:
        s = col[int(r)].as_py()
        if s not in seen:
            seen.add(s)
            chosen.append(s)
            if len(chosen) == want:
                break
    with open(os.path.join(os.path.dirname(os.path.abspath(table)), "subjects.json"), "w") as f:
        json.dump(chosen, f)
    log = os.listdir(os.path.join(table, "_delta_log"))
    out({
        "rows": rows, "files": len(uris), "row_groups_per_file": groups, "bytes": size,
        "distinct_users": pc.count_distinct(col).as_py(), "version": dt.version(),
        "checkpoints": sum(1 for x in log if ".checkpoint." in x), "seconds": gen_s,
        "deltalake": deltalake.__version__, "pyarrow": pa.__version__,
    })

elif cmd == "delete":
    from deltalake import DeltaTable
    table, ids = sys.argv[2], subjects(sys.argv[3], int(sys.argv[4]))
    predicate = in_list(ids)
    t0 = time.perf_counter()
    dt = DeltaTable(table)
    t1 = time.perf_counter()
    metrics = dt.delete(predicate)
    t2 = time.perf_counter()
    out({"load_s": t1 - t0, "delete_s": t2 - t1, "metrics": metrics, "version": dt.version()})

elif cmd == "vacuum":
    from deltalake import DeltaTable
    t0 = time.perf_counter()
    dt = DeltaTable(sys.argv[2])
    t1 = time.perf_counter()
    gone = dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    t2 = time.perf_counter()
    out({"load_s": t1 - t0, "vacuum_s": t2 - t1, "deleted": len(gone), "version": dt.version()})

elif cmd == "check":
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    import pyarrow as pa
    table, ids = sys.argv[2], subjects(sys.argv[3], int(sys.argv[4]))
    dt = DeltaTable(table)
    t = dt.to_pyarrow_table(columns=["user_id", "event_id"])
    hit = pc.is_in(t.column("user_id"), value_set=pa.array(ids, pa.string()))
    subject_rows = pc.sum(hit).as_py() or 0
    kept = t.filter(pc.invert(hit))
    out({"version": dt.version(), "rows": t.num_rows, "subject_rows": subject_rows,
         "event_id_sum": pc.sum(t.column("event_id")).as_py() or 0,
         "kept_event_id_sum": pc.sum(kept.column("event_id")).as_py() or 0,
         "files": len(dt.file_uris())})

else:
    sys.exit(f"unknown command {cmd}")

# delta-rs's background threads can abort the interpreter's teardown under load
# ("terminate called without an active exception") after the work is done: skip it.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)

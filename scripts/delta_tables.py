"""Delta tables written by delta-rs for Lethe's tests, and what delta-rs reads back.

  make DIR            writes DIR/plain (4 commits: 2 appends, a delete, an append)
                      and DIR/parted (partitioned by country, 3 appends)
  files TABLE [V]     prints {"version": v, "files": [...]} as delta-rs sees it
  rows TABLE          prints the sorted user_id values delta-rs reads
  history TABLE       prints the operations of the table's history, newest first
  compact TABLE       delta-rs OPTIMIZE (compaction: removes and re-adds files)
  make-features DIR   writes DIR/mapped (column mapping in name mode, a delete by
                      delta-rs) and DIR/cdf (change data feed on, a delete of u-3
                      by delta-rs, then an append)
  make-propagation DIR  writes DIR/bronze (change data feed on) and DIR/silver
                      (the same rows), both 30 rows of u-0 … u-6
  delete TABLE PRED   delta-rs DELETE with the SQL predicate PRED
  make-files DIR N [cdf]  writes DIR/files: N appends (one file each) of 10 rows of
                      ids p<i>-<j>; file 3 also holds target-0003 (with "cdf": the change
                      data feed on)
  make-files-append TABLE ID  appends one file of 10 rows q-<j> and the row ID
  cdf TABLE START     prints [[user_id, _change_type, _commit_version], ...] of the
                      change feed from version START, as delta-rs's load_cdf reads it
"""
import json, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

def batch(start, n, country=None):
    ids = [f"u-{i % 7}" for i in range(start, start + n)]
    return pa.table({
        "user_id": ids,
        "n": pa.array(range(start, start + n), pa.int64()),
        "country": [country or ("DE" if i % 2 else "FR") for i in range(start, start + n)],
    })

def make(d):
    plain = f"{d}/plain"
    write_deltalake(plain, batch(0, 20))
    write_deltalake(plain, batch(20, 20), mode="append")
    DeltaTable(plain).delete("user_id = 'u-3'")
    write_deltalake(plain, batch(40, 10), mode="append")
    named = f"{d}/named"
    long_ids = pa.table({"user_id": [f"customer-{i % 5:06d}" for i in range(30)], "n": pa.array(range(30), pa.int64())})
    write_deltalake(named, long_ids)
    DeltaTable(named).delete("user_id = 'customer-000004'")
    write_deltalake(named, long_ids.slice(0, 10), mode="append")
    parted = f"{d}/parted"
    for i in range(3):
        write_deltalake(parted, batch(i * 10, 10), mode="append", partition_by=["country"])

def make_features(d):
    mapped = f"{d}/mapped"
    write_deltalake(mapped, batch(0, 20), configuration={"delta.columnMapping.mode": "name"})
    write_deltalake(mapped, batch(20, 20), mode="append")
    DeltaTable(mapped).delete("user_id = 'u-6'")
    cdf = f"{d}/cdf"
    write_deltalake(cdf, batch(0, 30), configuration={"delta.enableChangeDataFeed": "true"})
    DeltaTable(cdf).delete("user_id IN ('u-3', 'u-5')")
    write_deltalake(cdf, batch(30, 10), mode="append")

def make_files(d, n, cdf):
    t = f"{d}/files"
    conf = {"delta.enableChangeDataFeed": "true"} if cdf else None
    for i in range(n):
        ids = [f"p{i}-{j}" for j in range(10)] + (["target-0003"] if i == 3 else [])
        rows = pa.table({"user_id": ids, "n": pa.array(range(len(ids)), pa.int64())})
        write_deltalake(t, rows, mode="append", configuration=conf if i == 0 else None)

cmd = sys.argv[1]
if cmd == "make":
    make(sys.argv[2])
elif cmd == "make-files":
    make_files(sys.argv[2], int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "cdf")
elif cmd == "make-files-append":
    ids = [f"q-{j}" for j in range(10)] + [sys.argv[3]]
    write_deltalake(sys.argv[2], pa.table({"user_id": ids, "n": pa.array(range(len(ids)), pa.int64())}), mode="append")
elif cmd == "make-propagation":
    write_deltalake(f"{sys.argv[2]}/bronze", batch(0, 30), configuration={"delta.enableChangeDataFeed": "true"})
    write_deltalake(f"{sys.argv[2]}/silver", batch(0, 30))
elif cmd == "delete":
    print(json.dumps(DeltaTable(sys.argv[2]).delete(sys.argv[3])))
elif cmd == "make-features":
    make_features(sys.argv[2])
elif cmd == "cdc-rows":
    import glob, pyarrow.parquet as pq
    out = []
    for f in glob.glob(f"{sys.argv[2]}/_change_data/**/*.parquet", recursive=True):
        t = pq.read_table(f)
        out += zip(t.column("user_id").to_pylist(), t.column("_change_type").to_pylist())
    print(json.dumps(sorted(out)))
elif cmd == "cdf":
    t = pa.table(DeltaTable(sys.argv[2]).load_cdf(starting_version=int(sys.argv[3])).read_all())
    out = sorted(zip(t.column("user_id").to_pylist(), t.column("_change_type").to_pylist(), t.column("_commit_version").to_pylist()))
    print(json.dumps(out))
elif cmd == "files":
    t = DeltaTable(sys.argv[2], version=int(sys.argv[3])) if len(sys.argv) > 3 else DeltaTable(sys.argv[2])
    import os
    from urllib.parse import unquote
    root = os.path.abspath(sys.argv[2])
    uris = t.files() if hasattr(t, "files") else t.file_uris()
    rel = [os.path.relpath(unquote(u[7:] if u.startswith("file://") else u), root) if os.path.isabs(unquote(u[7:] if u.startswith("file://") else u)) else u for u in uris]
    print(json.dumps({"version": t.version(), "files": sorted(rel)}))
elif cmd == "rows":
    # Through delta-rs's query engine, which applies column mapping and deletion vectors
    # (to_pyarrow_table reads physical columns as they are).
    from deltalake import QueryBuilder
    t = pa.table(QueryBuilder().register("t", DeltaTable(sys.argv[2])).execute("select user_id from t").read_all())
    print(json.dumps(sorted(t.column("user_id").to_pylist())))
elif cmd == "append":
    write_deltalake(sys.argv[2], batch(int(sys.argv[3]), int(sys.argv[4])), mode="append")
elif cmd == "append-loop":
    # Appends N small batches of writer-only ids ("w-…"), as fast as it can.
    # A commit conflict with a concurrent DELETE is retried, as a pipeline would.
    import time
    from deltalake.exceptions import CommitFailedError
    table, n = sys.argv[2], int(sys.argv[3])
    retries = 0
    for i in range(n):
        batch_i = pa.table({"user_id": [f"w-{i}-{j}" for j in range(3)], "n": pa.array([i] * 3, pa.int64()), "country": ["SE"] * 3})
        while True:
            try:
                write_deltalake(table, batch_i, mode="append")
                break
            except CommitFailedError:
                retries += 1
                time.sleep(0.05)
    print(json.dumps({"appends": n, "retries": retries}))
elif cmd == "compact":
    print(json.dumps(DeltaTable(sys.argv[2]).optimize.compact()))
elif cmd == "checkpoint":
    DeltaTable(sys.argv[2]).create_checkpoint()
elif cmd == "history":
    print(json.dumps([h.get("operation") for h in DeltaTable(sys.argv[2]).history()]))

# delta-rs's background threads can abort the interpreter's teardown under load
# ("terminate called without an active exception") after the work is done: skip it.
import os
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)

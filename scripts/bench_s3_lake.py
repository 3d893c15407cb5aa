"""The lake of `lethe-bench s3` (docs/benchmarks.md, "Issue 13: S3 vs local"): JSON Lines, gzip JSON
Lines, CSV, Parquet with 4 row groups per object, and a Delta table (delta-rs), with users u-0000000 …
and one rare subject, t-0000001, in one row of the first object of each dataset.

  bench_s3_lake.py DIR USERS SCALE     writes DIR/{raw/jsonl,raw/gz,raw/csv,raw/parquet,delta/events}
Prints {"files": n, "bytes": b}.
"""
import csv, gzip, io, json, os, random, sys
import pyarrow as pa, pyarrow.parquet as pq
from deltalake import write_deltalake

d, users, scale = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = random.Random(13)

def rows(n, first):
    ids = [f"u-{rng.randrange(users):07d}" for _ in range(n)]
    if first:
        ids[n // 2] = "t-0000001"
    pads = [rng.randbytes(24).hex() for _ in range(n)]
    return ids, pads

def objects(n):
    return max(2, int(n * scale))

# ~1 MB text objects (about 7,000 records of ~150 bytes).
per = 7000
for kind in ["jsonl", "gz", "csv"]:
    os.makedirs(f"{d}/raw/{kind}", exist_ok=True)
    for i in range(objects(10)):
        ids, pads = rows(per, i == 0)
        if kind == "csv":
            b = io.StringIO()
            w = csv.writer(b, lineterminator="\n")
            w.writerow(["user_id", "n", "event", "pad"])
            for j, (u, p) in enumerate(zip(ids, pads)):
                w.writerow([u, i * per + j, "click", p])
            open(f"{d}/raw/csv/part-{i:03d}.csv", "w").write(b.getvalue())
        else:
            text = "".join(json.dumps({"user": {"id": u}, "n": i * per + j, "event": "click", "pad": p}) + "\n" for j, (u, p) in enumerate(zip(ids, pads)))
            if kind == "jsonl":
                open(f"{d}/raw/jsonl/part-{i:03d}.jsonl", "w").write(text)
            else:
                open(f"{d}/raw/gz/part-{i:03d}.jsonl.gz", "wb").write(gzip.compress(text.encode()))

# ~5 MB Parquet objects of 4 row groups each (random padding: little compression).
os.makedirs(f"{d}/raw/parquet", exist_ok=True)
prow = 80000
for i in range(objects(8)):
    ids, pads = rows(prow, i == 0)
    t = pa.table({"user_id": ids, "n": pa.array(range(i * prow, (i + 1) * prow), pa.int64()), "pad": pads,
                  "value": pa.array([rng.random() for _ in range(prow)], pa.float64())})
    pq.write_table(t, f"{d}/raw/parquet/part-{i:03d}.parquet", row_group_size=prow // 4)

# A Delta table of 8 appends (one file each, ~1 MB).
drow = 15000
for i in range(objects(8)):
    ids, pads = rows(drow, i == 0)
    t = pa.table({"user_id": ids, "n": pa.array(range(i * drow, (i + 1) * drow), pa.int64()), "pad": pads})
    write_deltalake(f"{d}/delta/events", t, mode="append")

files, size = 0, 0
for root, _, names in os.walk(d):
    for n in names:
        files += 1
        size += os.path.getsize(os.path.join(root, n))
print(json.dumps({"files": files, "bytes": size}))
sys.stdout.flush()
os._exit(0)

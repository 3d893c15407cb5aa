"""Delta tables as other writers (Spark, Databricks, delta-kernel) leave them, for Lethe's tests.

delta-rs writes the data files; this script then writes what delta-rs does not: the log as those
writers shape it. Every table is read back by delta-rs before the script returns.

  spark-dv DIR         DIR/t: deletion vectors on; rows user_id u-(row % 7), n = row. Version 1
                       gives file A a deletion vector (rows 0, 1), committed add-before-remove as
                       Spark does; version 2 deletes more rows of A (rows 2, 3): `add(A, dv2)` and
                       `remove(A, dv1)` in one commit. A Parquet checkpoint of version 2 lists the
                       live add(A, dv2) *before* the tombstones remove(A, no dv) and remove(A, dv1),
                       with `stats_parsed`; every version has a `.crc` whose `allFiles` carry
                       statistics. Prints {"A": path, "deleted": rows}.
  short-ids DIR        DIR/t: integer subject ids 0…9 (`id`), commit timestamps holding every
                       digit, a commitInfo whose predicate names `id = 5`, `.crc` files with stats.
  change-type DIR      DIR/t: change data feed on, and data files holding an all-null
                       `_change_type` column (as Databricks writes them).
  ict-rows DIR         DIR/t: in-commit timestamps and row tracking on (writer features
                       `inCommitTimestamp`, `rowTracking`, `domainMetadata`), baseRowId and
                       defaultRowCommitVersion on every add, the high water mark in a
                       `delta.rowTracking` domainMetadata; ICTs in the future (later than now).
  v2-checkpoint DIR KIND  DIR/t: feature `v2Checkpoint`; a V2 checkpoint of the latest version:
                       KIND `uuid-json` (UUID-named JSON checkpoint with a sidecar), `uuid-parquet`,
                       or `classic` (classic-named Parquet in V2 spec with a sidecar); then the
                       commits before it are removed and `_last_checkpoint` names it.
  id-mode DIR          DIR/t: column mapping in `id` mode (physical names `col-…`, Parquet field ids).
  features DIR NAME    DIR/t: a plain table whose protocol lists the writer feature NAME.
  rows TABLE [COL]     prints the sorted values of COL (default user_id) delta-rs reads
  cdf TABLE START      prints [[user_id, _change_type, _commit_version], ...] from load_cdf
  check-cdc TABLE START  reads every change data file with pyarrow and DuckDB (exactly one
                       `_change_type` column) and the feed from START with delta-rs's load_cdf;
                       prints {"files", "rows": [[user_id, _change_type]], "feed": [...]}
  append TABLE         appends one row (u-99) with delta-rs
"""
import json, os, struct, sys, time, uuid, zlib, glob
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake, QueryBuilder
from pyroaring import BitMap64

MAGIC = 1681511377
Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85(data):
    padded = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(padded), 4):
        v = int.from_bytes(padded[i:i + 4], "big")
        block = []
        for _ in range(5):
            block.append(Z85[v % 85])
            v //= 85
        out.extend(reversed(block))
    return "".join(out)


def log_path(t, v):
    return f"{t}/_delta_log/{v:020d}.json"


def read_log(t, v):
    with open(log_path(t, v)) as fh:
        return [json.loads(l) for l in fh if l.strip()]


def write_log(t, v, actions, exclusive=False):
    with open(log_path(t, v), "x" if exclusive else "w") as fh:
        fh.write("\n".join(json.dumps(a, separators=(",", ":")) for a in actions) + "\n")


def versions(t):
    return sorted(int(os.path.basename(p)[:20]) for p in glob.glob(f"{t}/_delta_log/*.json") if len(os.path.basename(p)) == 25)


def replay(t):
    """Live adds by path and tombstones by (path, dv id), keyed as the protocol says."""
    live, removed = {}, {}
    def dvid(a):
        d = a.get("deletionVector")
        if not d:
            return None
        return d["storageType"] + d["pathOrInlineDv"] + (f"@{d['offset']}" if d.get("offset") is not None else "")
    for v in versions(t):
        acts = read_log(t, v)
        for a in acts:
            if "remove" in a:
                r = a["remove"]
                k = (r["path"], dvid(r))
                if r["path"] in live and (live[r["path"]]["path"], dvid(live[r["path"]])) == k:
                    del live[r["path"]]
                removed[k] = r
        for a in acts:
            if "add" in a:
                live[a["add"]["path"]] = a["add"]
                removed.pop((a["add"]["path"], dvid(a["add"])), None)
    return live, removed


def batch(start, n):
    return pa.table({"user_id": [f"u-{i % 7}" for i in range(start, start + n)], "n": pa.array(range(start, start + n), pa.int64())})


def crc_for(t, v):
    """A Databricks-style version checksum with `allFiles` (statistics included)."""
    live, _ = replay_to(t, v)
    proto = meta = None
    for w in range(v + 1):
        for a in read_log(t, w):
            proto = a.get("protocol", proto)
            meta = a.get("metaData", meta)
    crc = {"txnId": str(uuid.uuid4()), "tableSizeBytes": sum(a["size"] for a in live.values()), "numFiles": len(live),
           "numMetadata": 1, "numProtocol": 1, "protocol": proto, "metadata": meta, "allFiles": list(live.values())}
    with open(f"{t}/_delta_log/{v:020d}.crc", "w") as fh:
        fh.write(json.dumps(crc, separators=(",", ":")))


def replay_to(t, upto):
    live = {}
    for v in versions(t):
        if v > upto:
            break
        acts = read_log(t, v)
        for a in acts:
            if "remove" in a:
                live.pop(a["remove"]["path"], None)
        for a in acts:
            if "add" in a:
                live[a["add"]["path"]] = a["add"]
    return live, None


def dv_descriptor(t, rows):
    data = struct.pack("<I", MAGIC)
    bm = BitMap64(rows)
    bm.run_optimize()
    data += bm.serialize()
    u = uuid.uuid4()
    with open(f"{t}/deletion_vector_{u}.bin", "wb") as fh:
        fh.write(b"\x01" + struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data)))
    return {"storageType": "u", "pathOrInlineDv": z85(u.bytes), "offset": 1, "sizeInBytes": len(data), "cardinality": len(rows)}


def spark_dv(d):
    t = f"{d}/t"
    write_deltalake(t, batch(0, 20), configuration={"delta.enableDeletionVectors": "true"})
    write_deltalake(t, batch(20, 10), mode="append")
    live, _ = replay(t)
    a_path = sorted(live, key=lambda p: json.loads(live[p]["stats"])["numRecords"])[-1]  # the 20-row file
    add = live[a_path]
    now = int(time.time() * 1000)
    # Version 2: a first deletion vector (rows 0, 1): add first, then the remove of the DV-less file.
    dv1 = dv_descriptor(t, [0, 1])
    add1 = dict(add, deletionVector=dv1, dataChange=True)
    write_log(t, 2, [{"commitInfo": {"timestamp": now, "operation": "DELETE", "operationParameters": {"predicate": "[\"(n < 2)\"]"},
                                     "engineInfo": "Apache-Spark/3.5.0 Delta-Lake/3.1.0"}},
                     {"add": add1},
                     {"remove": {"path": a_path, "deletionTimestamp": now, "dataChange": True, "extendedFileMetadata": True,
                                 "partitionValues": {}, "size": add["size"], "stats": add["stats"]}}], exclusive=True)
    # Version 3: more rows of the same file (2, 3): add(A, dv2) and remove(A, dv1) in one commit, add first.
    dv2 = dv_descriptor(t, [0, 1, 2, 3])
    add2 = dict(add, deletionVector=dv2, dataChange=True)
    write_log(t, 3, [{"commitInfo": {"timestamp": now + 1, "operation": "DELETE", "operationParameters": {"predicate": "[\"(n < 4)\"]"},
                                     "engineInfo": "Apache-Spark/3.5.0 Delta-Lake/3.1.0"}},
                     {"add": add2},
                     {"remove": {"path": a_path, "deletionTimestamp": now + 1, "dataChange": True, "extendedFileMetadata": True,
                                 "partitionValues": {}, "size": add["size"], "stats": add["stats"], "deletionVector": dv1}}], exclusive=True)
    for v in versions(t):
        crc_for(t, v)
    write_parquet_checkpoint(t, 3, removes_last=True)
    print(json.dumps({"A": a_path, "deleted": [0, 1, 2, 3]}))


def write_parquet_checkpoint(t, v, removes_last=True, name=None, rows=None, sidecars=None, metadata_row=None):
    """A Spark-shaped Parquet checkpoint of version v: protocol, metaData, adds (with stats and
    stats_parsed), tombstones (without stats)."""
    live, removed = replay(t)
    proto = meta = None
    for w in versions(t):
        if w > v:
            break
        for a in read_log(t, w):
            proto = a.get("protocol", proto)
            meta = a.get("metaData", meta)
    dv_t = pa.struct([("storageType", pa.string()), ("pathOrInlineDv", pa.string()), ("offset", pa.int32()),
                      ("sizeInBytes", pa.int32()), ("cardinality", pa.int64())])
    bounds = pa.struct([("user_id", pa.string()), ("n", pa.int64())])
    stats_t = pa.struct([("numRecords", pa.int64()), ("minValues", bounds), ("maxValues", bounds), ("tightBounds", pa.bool_())])
    add_t = pa.struct([("path", pa.string()), ("partitionValues", pa.map_(pa.string(), pa.string())), ("size", pa.int64()),
                       ("modificationTime", pa.int64()), ("dataChange", pa.bool_()), ("stats", pa.string()),
                       ("tags", pa.map_(pa.string(), pa.string())), ("deletionVector", dv_t), ("stats_parsed", stats_t)])
    rem_t = pa.struct([("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_()),
                       ("extendedFileMetadata", pa.bool_()), ("partitionValues", pa.map_(pa.string(), pa.string())),
                       ("size", pa.int64()), ("deletionVector", dv_t)])
    proto_t = pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32()),
                         ("readerFeatures", pa.list_(pa.string())), ("writerFeatures", pa.list_(pa.string()))])
    meta_t = pa.struct([("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
                        ("format", pa.struct([("provider", pa.string()), ("options", pa.map_(pa.string(), pa.string()))])),
                        ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
                        ("configuration", pa.map_(pa.string(), pa.string())), ("createdTime", pa.int64())])
    fields = [("protocol", proto_t), ("metaData", meta_t), ("add", add_t), ("remove", rem_t)]
    if sidecars is not None:
        fields += [("checkpointMetadata", pa.struct([("version", pa.int64())])),
                   ("sidecar", pa.struct([("path", pa.string()), ("sizeInBytes", pa.int64()), ("modificationTime", pa.int64())]))]
    schema = pa.schema(fields)

    def dv(d):
        return None if not d else {k: d.get(k) for k in ("storageType", "pathOrInlineDv", "offset", "sizeInBytes", "cardinality")}

    def add_row(a):
        st = json.loads(a["stats"]) if a.get("stats") else None
        parsed = None
        if st:
            parsed = {"numRecords": st.get("numRecords"), "minValues": st.get("minValues"), "maxValues": st.get("maxValues"),
                      "tightBounds": st.get("tightBounds")}
        return {"add": {"path": a["path"], "partitionValues": list((a.get("partitionValues") or {}).items()), "size": a["size"],
                        "modificationTime": a["modificationTime"], "dataChange": False, "stats": a.get("stats"),
                        "tags": list((a.get("tags") or {}).items()), "deletionVector": dv(a.get("deletionVector")),
                        "stats_parsed": parsed}}

    def rem_row(r):
        return {"remove": {"path": r["path"], "deletionTimestamp": r.get("deletionTimestamp"), "dataChange": False,
                           "extendedFileMetadata": r.get("extendedFileMetadata"), "partitionValues": list((r.get("partitionValues") or {}).items()),
                           "size": r.get("size"), "deletionVector": dv(r.get("deletionVector"))}}

    out = [{"protocol": {"minReaderVersion": proto["minReaderVersion"], "minWriterVersion": proto["minWriterVersion"],
                         "readerFeatures": proto.get("readerFeatures"), "writerFeatures": proto.get("writerFeatures")}},
           {"metaData": {"id": meta["id"], "name": meta.get("name"), "description": meta.get("description"),
                         "format": {"provider": "parquet", "options": []}, "schemaString": meta["schemaString"],
                         "partitionColumns": meta.get("partitionColumns", []), "configuration": list((meta.get("configuration") or {}).items()),
                         "createdTime": meta.get("createdTime")}}]
    if sidecars is not None:
        out.append({"checkpointMetadata": {"version": v}})
        out += [{"sidecar": s} for s in sidecars]
    files = [add_row(a) for a in live.values()]
    tombs = [rem_row(r) for r in removed.values()]
    if rows == "files-only":
        out = files + tombs
        schema = pa.schema([("add", add_t), ("remove", rem_t)])
    elif sidecars is None:
        out += (files + tombs) if removes_last else (tombs + files)
    full = [{f.name: r.get(f.name) for f in schema} for r in out]
    target = name or f"{t}/_delta_log/{v:020d}.checkpoint.parquet"
    pq.write_table(pa.Table.from_pylist(full, schema=schema), target)
    if name is None:
        with open(f"{t}/_delta_log/_last_checkpoint", "w") as fh:
            fh.write(json.dumps({"version": v, "size": len(out)}))
    return len(out)


def short_ids(d):
    t = f"{d}/t"
    write_deltalake(t, pa.table({"id": pa.array(range(0, 5), pa.int64()), "v": [f"a{i}" for i in range(5)]}))
    write_deltalake(t, pa.table({"id": pa.array(range(5, 10), pa.int64()), "v": [f"b{i}" for i in range(5)]}), mode="append")
    write_deltalake(t, pa.table({"id": pa.array([7, 8], pa.int64()), "v": ["c7", "c8"]}), mode="append")
    # Another tool's commit whose predicate names id 5 (a DELETE that matched nothing).
    v = versions(t)[-1] + 1
    write_log(t, v, [{"commitInfo": {"timestamp": 1555555555555, "operation": "DELETE",
                                     "operationParameters": {"predicate": "[\"(id = 5)\"]"}, "engineInfo": "Apache-Spark/3.5.5 Delta-Lake/3.5.5"}}],
              exclusive=True)
    # Every commit's timestamp holds every digit.
    for w in versions(t):
        acts = read_log(t, w)
        for a in acts:
            if "commitInfo" in a:
                a["commitInfo"]["timestamp"] = 1234567890123 + w
        write_log(t, w, acts)
    for w in versions(t):
        crc_for(t, w)


def change_type(d):
    t = f"{d}/t"
    write_deltalake(t, batch(0, 14), configuration={"delta.enableChangeDataFeed": "true"})
    write_deltalake(t, batch(14, 7), mode="append")
    # Databricks writes data files with an all-null `_change_type` column (not in the schema).
    for p in glob.glob(f"{t}/*.parquet"):
        tb = pq.read_table(p)
        tb = tb.append_column("_change_type", pa.nulls(tb.num_rows, pa.string()))
        pq.write_table(tb, p)
        size = os.path.getsize(p)
        for w in versions(t):
            acts = read_log(t, w)
            for a in acts:
                if "add" in a and unquote(a["add"]["path"]) == os.path.basename(p):
                    a["add"]["size"] = size
            write_log(t, w, acts)


def ict_rows(d):
    t = f"{d}/t"
    write_deltalake(t, batch(0, 14))
    write_deltalake(t, batch(14, 7), mode="append")
    future = int(time.time() * 1000) + 86_400_000
    base = 0
    hwm = -1
    for w in versions(t):
        acts = read_log(t, w)
        info = [a for a in acts if "commitInfo" in a]
        rest = [a for a in acts if "commitInfo" not in a]
        ci = info[0]["commitInfo"] if info else {"operation": "WRITE"}
        ci["inCommitTimestamp"] = future + w
        ci["timestamp"] = future + w
        for a in rest:
            if "protocol" in a:
                a["protocol"] = {"minReaderVersion": 1, "minWriterVersion": 7,
                                 "writerFeatures": ["inCommitTimestamp", "rowTracking", "domainMetadata"]}
            if "metaData" in a:
                a["metaData"]["configuration"].update({
                    "delta.enableInCommitTimestamps": "true", "delta.enableRowTracking": "true",
                    "delta.rowTracking.materializedRowIdColumnName": "_row-id-col-x",
                    "delta.rowTracking.materializedRowCommitVersionColumnName": "_row-commit-version-col-x"})
            if "add" in a:
                n = json.loads(a["add"]["stats"])["numRecords"]
                a["add"]["baseRowId"] = base
                a["add"]["defaultRowCommitVersion"] = w
                base += n
                hwm = base - 1
        rest.append({"domainMetadata": {"domain": "delta.rowTracking", "configuration": json.dumps({"rowIdHighWaterMark": hwm + 100}),
                                        "removed": False}})
        write_log(t, w, [{"commitInfo": ci}] + rest)
    print(json.dumps({"highWaterMark": hwm + 100, "lastICT": future + versions(t)[-1]}))


def v2_checkpoint(d, kind):
    t = f"{d}/t"
    write_deltalake(t, batch(0, 14))
    write_deltalake(t, batch(14, 7), mode="append")
    DeltaTable(t).delete("user_id = 'u-6'")
    write_deltalake(t, batch(21, 7), mode="append")
    acts = read_log(t, 0)
    for a in acts:
        if "protocol" in a:
            a["protocol"] = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["v2Checkpoint"], "writerFeatures": ["v2Checkpoint"]}
        if "metaData" in a:
            a["metaData"]["configuration"]["delta.checkpointPolicy"] = "v2"
    write_log(t, 0, acts)
    v = versions(t)[-1]
    os.makedirs(f"{t}/_delta_log/_sidecars", exist_ok=True)
    side = f"{uuid.uuid4()}.parquet"
    write_parquet_checkpoint(t, v, name=f"{t}/_delta_log/_sidecars/{side}", rows="files-only")
    sc = {"path": side, "sizeInBytes": os.path.getsize(f"{t}/_delta_log/_sidecars/{side}"), "modificationTime": int(time.time() * 1000)}
    u = uuid.uuid4()
    if kind == "uuid-json":
        live, _ = replay(t)
        proto = meta = None
        for w in versions(t):
            for a in read_log(t, w):
                proto = a.get("protocol", proto)
                meta = a.get("metaData", meta)
        name = f"{v:020d}.checkpoint.{u}.json"
        lines = [{"checkpointMetadata": {"version": v}}, {"protocol": proto}, {"metaData": meta}, {"sidecar": sc}]
        with open(f"{t}/_delta_log/{name}", "w") as fh:
            fh.write("\n".join(json.dumps(a) for a in lines) + "\n")
        size = len(lines)
    else:
        name = f"{v:020d}.checkpoint.{u}.parquet" if kind == "uuid-parquet" else f"{v:020d}.checkpoint.parquet"
        size = write_parquet_checkpoint(t, v, name=f"{t}/_delta_log/{name}", sidecars=[sc])
    with open(f"{t}/_delta_log/_last_checkpoint", "w") as fh:
        fh.write(json.dumps({"version": v, "size": size, "v2Checkpoint": {"path": name, "sizeInBytes": os.path.getsize(f"{t}/_delta_log/{name}"),
                                                                           "modificationTime": 0, "nonFileActions": [], "sidecarFiles": [sc]}}))
    for w in versions(t):
        if w < v:
            os.remove(log_path(t, w))
    print(json.dumps({"checkpoint": name, "sidecar": side, "version": v}))


def id_mode(d):
    t = f"{d}/t"
    os.makedirs(f"{t}/_delta_log")
    cols = [("user_id", pa.string(), 1), ("n", pa.int64(), 2)]
    phys = {c: f"col-{uuid.uuid4()}" for c, _, _ in cols}
    schema = {"type": "struct", "fields": [{"name": c, "type": "string" if ty == pa.string() else "long", "nullable": True,
                                            "metadata": {"delta.columnMapping.id": i, "delta.columnMapping.physicalName": phys[c]}}
                                           for c, ty, i in cols]}
    arrow = pa.schema([pa.field(phys[c], ty, metadata={b"PARQUET:field_id": str(i).encode()}) for c, ty, i in cols])
    adds = []
    for f, (start, n) in enumerate([(0, 14), (14, 7)]):
        b = batch(start, n)
        name = f"part-0000{f}-{uuid.uuid4()}-c000.snappy.parquet"
        pq.write_table(pa.Table.from_arrays([b.column("user_id"), b.column("n")], schema=arrow), f"{t}/{name}")
        adds.append({"add": {"path": name, "partitionValues": {}, "size": os.path.getsize(f"{t}/{name}"), "modificationTime": 0,
                             "dataChange": True, "stats": json.dumps({"numRecords": n})}})
    write_log(t, 0, [{"commitInfo": {"timestamp": 0, "operation": "CREATE TABLE"}},
                     {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
                     {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                                   "schemaString": json.dumps(schema), "partitionColumns": [],
                                   "configuration": {"delta.columnMapping.mode": "id", "delta.columnMapping.maxColumnId": "2"},
                                   "createdTime": 0}}] + adds)


def features(d, name):
    t = f"{d}/t"
    write_deltalake(t, batch(0, 14))
    acts = read_log(t, 0)
    for a in acts:
        if "protocol" in a:
            a["protocol"] = {"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": [name]}
    write_log(t, 0, acts)


def rows(table, col="user_id"):
    t = pa.table(QueryBuilder().register("t", DeltaTable(table)).execute(f'select "{col}" from t').read_all())
    return sorted(t.column(0).to_pylist(), key=lambda x: (x is None, x))


cmd = sys.argv[1]
if cmd == "spark-dv":
    spark_dv(sys.argv[2])
elif cmd == "short-ids":
    short_ids(sys.argv[2])
elif cmd == "change-type":
    change_type(sys.argv[2])
elif cmd == "ict-rows":
    ict_rows(sys.argv[2])
elif cmd == "v2-checkpoint":
    v2_checkpoint(sys.argv[2], sys.argv[3])
elif cmd == "id-mode":
    id_mode(sys.argv[2])
elif cmd == "features":
    features(sys.argv[2], sys.argv[3])
elif cmd == "rows":
    print(json.dumps(rows(sys.argv[2], *(sys.argv[3:4]))))
elif cmd == "cdf":
    tb = pa.table(DeltaTable(sys.argv[2]).load_cdf(starting_version=int(sys.argv[3])).read_all())
    print(json.dumps(sorted(zip(tb.column("user_id").to_pylist(), tb.column("_change_type").to_pylist(), tb.column("_commit_version").to_pylist()))))
elif cmd == "check-cdc":
    # Every change data file reads with pyarrow and DuckDB (one `_change_type` column), and delta-rs
    # reads the feed from version START.
    import duckdb
    table, start = sys.argv[2], int(sys.argv[3])
    files = sorted(glob.glob(f"{table}/_change_data/**/*.parquet", recursive=True))
    out = {"files": len(files), "rows": []}
    for f in files:
        tb = pq.read_table(f)
        assert tb.schema.names.count("_change_type") == 1, (f, tb.schema.names)
        con = duckdb.connect()
        n = con.execute(f"select count(*) from read_parquet('{f}') where _change_type = 'delete'").fetchone()[0]
        assert n == tb.num_rows, (f, n, tb.num_rows)
        out["rows"] += sorted(zip(tb.column("user_id").to_pylist(), tb.column("_change_type").to_pylist()))
    feed = pa.table(DeltaTable(table).load_cdf(starting_version=start).read_all())
    out["feed"] = sorted(zip(feed.column("user_id").to_pylist(), feed.column("_change_type").to_pylist(), feed.column("_commit_version").to_pylist()))
    print(json.dumps(out))
elif cmd == "append":
    write_deltalake(sys.argv[2], pa.table({"user_id": ["u-99"], "n": pa.array([99], pa.int64())}), mode="append")
else:
    raise SystemExit(f"unknown command {cmd}")

sys.stdout.flush()
sys.stderr.flush()
os._exit(0)

"""Delta tables with deletion vectors for Lethe's tests: delta-rs writes the data,
this script commits the deletion vectors (delta-rs 1.6.6 reads them but has no
API that writes them for a chosen set of rows).

  make DIR SIZES      writes DIR/dv with deletion vectors enabled (reader 3 / writer 7,
                      feature `deletionVectors`), one append per size in SIZES (comma
                      separated); file number f holds rows with f = f, id = f * 10^7 + row
                      and user_id = "u-{row % 7}"
  delete TABLE SPEC   commits one version that gives files deletion vectors, SPEC being JSON:
                        {"dvs": [{"f": 0, "rows": [1, 5], "ranges": [[0, 100], [200, 300, 3]],
                                  "storage": "u" | "i" | "p", "bin": "b1", "prefix": "ab"}]}
                      DVs with storage u or p and the same "bin" share one DV file, at
                      increasing offsets; "prefix" is the random prefix (a folder) of u files.
                      The commit is checked three ways: the DV bytes read back from the log and
                      the DV files decode (pyroaring) to the rows; delta-rs's deletion_vectors()
                      agrees; delta-rs's scan() returns every row but the deleted ones.
                      Prints {"version": v, "files": {path: {"f", "numRecords", "rows",
                      "descriptor", "dvFile"}}, "deltaRs": {...}}.
  bitmap SPEC         prints {"hex": DV bitmap bytes (magic + portable 64-bit Roaring), "rows": [...]}
                      for SPEC {"rows": [...], "ranges": [[start, stop(, step)], ...]}: row indexes
                      past 2^32 (several buckets), which no small data file can have.

Row indexes go into a 64-bit RoaringBitmap (pyroaring BitMap64, run-optimized) whose
portable serialization follows Delta's magic number; DV files are version byte 1, then per
DV a big-endian size, the bitmap and a big-endian CRC-32 (zlib) of the bitmap.
"""
import json, os, struct, sys, time, uuid, zlib
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from pyroaring import BitMap64

MAGIC = 1681511377
Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85_encode(data: bytes) -> str:
    """Z85 as Delta uses it: the input is zero-padded to a multiple of 4 bytes."""
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


def z85_decode(text: str, size: int) -> bytes:
    out = bytearray()
    for i in range(0, len(text), 5):
        v = 0
        for c in text[i:i + 5]:
            v = v * 85 + Z85.index(c)
        out += v.to_bytes(4, "big")
    return bytes(out[:size])


def make(d, sizes):
    t = f"{d}/dv"
    for f, n in enumerate(sizes):
        data = pa.table({
            "f": pa.array([f] * n, pa.int32()),
            "id": pa.array(range(f * 10**7, f * 10**7 + n), pa.int64()),
            "user_id": [f"u-{i % 7}" for i in range(n)],
        })
        if f == 0:
            write_deltalake(t, data, configuration={"delta.enableDeletionVectors": "true"})
        else:
            write_deltalake(t, data, mode="append")


def log_actions(table, version):
    with open(f"{table}/_delta_log/{version:020d}.json") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def live_adds(table, version):
    adds = {}
    for v in range(version + 1):
        for a in log_actions(table, v):
            if "add" in a:
                adds[a["add"]["path"]] = a["add"]
            elif "remove" in a:
                adds.pop(a["remove"]["path"], None)
    return adds


def file_numbers(table, adds):
    """f of each live file (read from the data), and each file's ids in physical row order."""
    out = {}
    for path in adds:
        ids = pq.read_table(f"{table}/{unquote(path)}", columns=["f", "id"])
        fs = set(ids.column("f").to_pylist())
        assert len(fs) == 1, f"{path} holds rows of several appends: {fs}"
        out[fs.pop()] = (path, ids.column("id").to_pylist())
    return out


def bitmap_bytes(rows):
    bm = BitMap64(rows)
    bm.run_optimize()
    return struct.pack("<I", MAGIC) + bm.serialize()


def deleted_rows_seen_by_delta_rs(table):
    """{relative path: deleted row indexes} from delta-rs's (delta-kernel's) deletion_vectors()."""
    seen = {}
    for batch in DeltaTable(table).deletion_vectors():
        for fp, keep in zip(batch.column("filepath").to_pylist(), batch.column("selection_vector").to_pylist()):
            local = unquote(fp[len("file://"):]) if fp.startswith("file://") else fp
            seen[os.path.relpath(local, table)] = [i for i, k in enumerate(keep) if not k]
    return seen


def delete(table, spec):
    table = os.path.abspath(table)
    version = DeltaTable(table).version()
    before = deleted_rows_seen_by_delta_rs(table)
    adds = live_adds(table, version)
    by_f = file_numbers(table, adds)
    bins = {}      # bin name -> (relative file path, bytearray, storage)
    out_files = {}
    new_adds, removes = [], []
    now = int(time.time() * 1000)
    for dv in spec["dvs"]:
        path, ids = by_f[dv["f"]]
        add = adds[path]
        if add.get("deletionVector"):
            raise SystemExit(f"{path} already has a deletion vector")
        rows = set(dv.get("rows", []))
        for r in dv.get("ranges", []):
            rows.update(range(*r))
        rows = sorted(rows)
        assert all(0 <= r < len(ids) for r in rows), f"row index out of range for {path}"
        data = bitmap_bytes(rows)
        storage = dv["storage"]
        if storage == "i":
            desc = {"storageType": "i", "pathOrInlineDv": z85_encode(data),
                    "sizeInBytes": len(data), "cardinality": len(rows)}
            dv_file = None
        else:
            name = dv.get("bin", "default")
            if name not in bins:
                u = uuid.uuid4()
                prefix = dv.get("prefix", "") if storage == "u" else ""
                rel = (prefix + "/" if prefix else "") + f"deletion_vector_{u}.bin"
                bins[name] = (rel, bytearray(b"\x01"), u, prefix)
            rel, buf, u, prefix = bins[name]
            offset = len(buf)
            buf += struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data))
            if storage == "u":
                where = prefix + z85_encode(u.bytes)
            else:
                where = "file://" + quote(f"{table}/{rel}")
            desc = {"storageType": storage, "pathOrInlineDv": where, "offset": offset,
                    "sizeInBytes": len(data), "cardinality": len(rows)}
            dv_file = rel
        stats = json.loads(add["stats"])
        stats["tightBounds"] = False
        new_add = dict(add)
        new_add.update({"dataChange": True, "stats": json.dumps(stats, separators=(",", ":")),
                        "deletionVector": desc, "modificationTime": add["modificationTime"]})
        new_adds.append(new_add)
        removes.append({"path": path, "deletionTimestamp": now, "dataChange": True,
                        "extendedFileMetadata": True, "partitionValues": add.get("partitionValues", {}),
                        "size": add["size"], "stats": add["stats"], "deletionVector": None})
        out_files[path] = {"f": dv["f"], "numRecords": len(ids), "rows": rows,
                           "descriptor": desc, "dvFile": dv_file}
    for rel, buf, _, _ in bins.values():
        os.makedirs(os.path.dirname(f"{table}/{rel}"), exist_ok=True)
        with open(f"{table}/{rel}", "wb") as fh:
            fh.write(buf)
    commit = [{"commitInfo": {"timestamp": now, "operation": "DELETE",
                              "operationParameters": {"predicate": "lethe test deletion vectors"},
                              "engineInfo": "lethe-tests delta_dv.py"}}]
    commit += [{"remove": r} for r in removes] + [{"add": a} for a in new_adds]
    # Put-if-absent: fails if someone else committed this version meanwhile.
    with open(f"{table}/_delta_log/{version + 1:020d}.json", "x") as fh:
        fh.write("\n".join(json.dumps(a, separators=(",", ":")) for a in commit) + "\n")

    # Check 1: what was committed decodes (independently of Lethe) to the rows.
    for path, info in out_files.items():
        desc = info["descriptor"]
        if desc["storageType"] == "i":
            data = z85_decode(desc["pathOrInlineDv"], desc["sizeInBytes"])
        else:
            with open(f"{table}/{info['dvFile']}", "rb") as fh:
                blob = fh.read()
            assert blob[0] == 1
            off = desc["offset"]
            (size,) = struct.unpack(">I", blob[off:off + 4])
            data = blob[off + 4:off + 4 + size]
            (crc,) = struct.unpack(">I", blob[off + 4 + size:off + 8 + size])
            assert size == desc["sizeInBytes"] and crc == zlib.crc32(data)
        assert struct.unpack("<I", data[:4])[0] == MAGIC
        assert list(BitMap64.deserialize(data[4:])) == info["rows"], f"pyroaring disagrees for {path}"

    # Check 2: delta-rs (delta-kernel) reads the same deletion vectors, old and new.
    dt = DeltaTable(table)
    assert dt.version() == version + 1
    seen = deleted_rows_seen_by_delta_rs(table)
    expected = dict(before)
    expected.update({unquote(p): info["rows"] for p, info in out_files.items()})
    # (a selection vector may stop after its last deleted row: the rows past it are kept)
    assert seen == expected, f"delta-rs deletion_vectors() disagrees: {sorted(seen)} vs {sorted(expected)}"

    # Check 3: delta-rs's scan leaves out exactly the deleted rows.
    ids_by_path = {unquote(path): ids for path, ids in by_f.values()}
    deleted_ids = {ids_by_path[p][r] for p, rows in expected.items() for r in rows}
    all_ids = {i for ids in ids_by_path.values() for i in ids}
    scanned = []
    for batch in dt.scan(columns=["id"]):
        scanned.extend(batch.column("id").to_pylist())
    assert len(scanned) == len(set(scanned)), "delta-rs scan returned duplicate rows"
    assert set(scanned) == all_ids - deleted_ids, \
        f"delta-rs scan: {len(scanned)} rows, expected {len(all_ids - deleted_ids)}"
    print(json.dumps({"version": version + 1, "files": out_files,
                      "deltaRs": {"deletionVectors": "agrees", "scanRows": len(scanned)}}))


cmd = sys.argv[1]
if cmd == "make":
    make(sys.argv[2], [int(s) for s in sys.argv[3].split(",")])
elif cmd == "delete":
    delete(sys.argv[2], json.loads(sys.argv[3]))
elif cmd == "bitmap":
    spec = json.loads(sys.argv[2])
    rows = set(spec.get("rows", []))
    for r in spec.get("ranges", []):
        rows.update(range(*r))
    rows = sorted(rows)
    data = bitmap_bytes(rows)
    assert list(BitMap64.deserialize(data[4:])) == rows
    print(json.dumps({"hex": data.hex(), "rows": rows}))
else:
    raise SystemExit(f"unknown command {cmd}")

# delta-rs's background threads can abort the interpreter's teardown under load
# ("terminate called without an active exception") after the work is done: skip it.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)

#!/usr/bin/env python3
"""A Delta table whose one data file delta-rs wrote, then re-laid byte for byte in a layout other
writers may use, for the tests of the erasure's partial reads (Tests/DeltaLakeTests/PartialReadFallbackTests).

  delta_relaid.py make DIR LAYOUT   writes DIR/t: one file of 4 row groups of 2,000 rows (user_id
                                    "p-<i>", one row "target-0" in row group 2; n; pad: 40 hex
                                    characters), bloom filters and page indexes on; then re-lays the
                                    file (same pages, same rows) and updates its `add` size:
      as-written   left as delta-rs wrote it (bloom filters after each row group, page indexes at the end)
      inline       each column chunk followed by its bloom filter, column index and offset index
                   (a row group's byte range then holds the structures of all but its last column)
      by-column    the chunks laid out column by column, the row groups of each column in reverse
                   order (every row group's byte range holds other row groups' chunks)
      in-group-0   every chunk's bloom filter, column index and offset index between the first two
                   chunks of row group 0 (whose byte range then holds the other row groups' page indexes)
  delta_relaid.py rows TABLE        prints the table's rows as delta-rs reads them, sorted by n:
                                    [[user_id, n, pad], ...]
  delta_relaid.py indexes FILE      prints, per row group and column, whether pyarrow finds a column
                                    index, an offset index and a bloom filter offset: [[[ci, oi, bf], ...], ...]
"""
import glob
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parquet_oddities import I32, I64, get, put, read_struct, write_struct  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROWS, GROUP = 8000, 2000


def data():
    ids = ["target-0" if i == 4321 else f"p-{i}" for i in range(ROWS)]
    pad = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(ROWS)]
    return pa.table({"user_id": ids, "n": pa.array(range(ROWS), pa.int64()), "pad": pad})


def chunk_start(md):
    d, p = get(md, 11), get(md, 9)
    return d if d is not None and 4 <= d < p else p


def shift_offset_index(raw, delta):
    s, _ = read_struct(raw)
    for loc in get(s, 1)[2]:
        put(loc, 1, I64, get(loc, 1) + delta)
    return write_struct(s)


def relay(path, layout):
    """Rewrites `path` in `layout`; returns its new size."""
    b = open(path, "rb").read()
    flen = struct.unpack("<I", b[-8:-4])[0]
    footer, _ = read_struct(b[len(b) - 8 - flen:len(b) - 8])
    groups = get(footer, 4)[2]
    pieces = {}   # (g, c) -> chunk bytes and its structures
    for g, rg in enumerate(groups):
        for c, cc in enumerate(get(rg, 1)[2]):
            md = get(cc, 3)
            s = chunk_start(md)
            bf = get(md, 14)
            pieces[(g, c)] = {
                "chunk": b[s:s + get(md, 7)], "start": s,
                "bf": b[bf:bf + get(md, 15)] if bf is not None else None,
                "ci": b[get(cc, 6):get(cc, 6) + get(cc, 7)] if get(cc, 6) is not None else None,
                "oi": b[get(cc, 4):get(cc, 4) + get(cc, 5)] if get(cc, 4) is not None else None,
            }
    ncols = len(get(groups[0], 1)[2])
    if layout == "inline":
        order = [(g, c) for g in range(len(groups)) for c in range(ncols)]
    elif layout in ("by-column", "in-group-0"):
        order = [(g, c) for c in range(ncols) for g in reversed(range(len(groups)))] if layout == "by-column" else sorted(pieces)
    else:
        raise SystemExit(f"unknown layout {layout}")
    # Chunks go where `order` puts them; an offset index's page offsets depend on where its chunk
    # lands, which (in-group-0) depends on the offset indexes' sizes: laid out until it settles.
    guess = {}
    for _ in range(10):
        out = bytearray(b"PAR1")
        placed = {k: {"chunk": v} for k, v in guess.items()}

        def structures():
            for g, c in sorted(pieces):
                p = pieces[(g, c)]
                for k in ("bf", "ci", "oi"):
                    if p[k] is not None:
                        placed.setdefault((g, c), {})[k] = len(out)
                        at = placed[(g, c)].get("chunk", p["start"])
                        out.extend(p[k] if k != "oi" else shift_offset_index(p[k], at - p["start"]))

        for g, c in order:
            if layout == "in-group-0" and (g, c) == (0, 1):
                structures()
            p = pieces[(g, c)]
            placed.setdefault((g, c), {})["chunk"] = len(out)
            out += p["chunk"]
            if layout == "inline":
                for k in ("bf", "ci", "oi"):
                    if p[k] is not None:
                        placed[(g, c)][k] = len(out)
                        out += p[k] if k != "oi" else shift_offset_index(p[k], placed[(g, c)]["chunk"] - p["start"])
        if layout == "by-column":
            structures()
        now = {k: v["chunk"] for k, v in placed.items()}
        if now == guess:
            break
        guess = now
    else:
        raise SystemExit("the layout did not settle")
    for g, rg in enumerate(groups):
        lo = hi = None
        for c, cc in enumerate(get(rg, 1)[2]):
            md, p, q = get(cc, 3), pieces[(g, c)], placed[(g, c)]
            delta = q["chunk"] - p["start"]
            put(md, 9, I64, get(md, 9) + delta)
            if get(md, 11) is not None:
                put(md, 11, I64, get(md, 11) + delta)
            put(cc, 2, I64, get(cc, 2) + delta)
            if "bf" in q:
                put(md, 14, I64, q["bf"])
            if "ci" in q:
                put(cc, 6, I64, q["ci"])
            if "oi" in q:
                put(cc, 4, I64, q["oi"])
            lo = q["chunk"] if lo is None else min(lo, q["chunk"])
            hi = q["chunk"] + len(p["chunk"]) if hi is None else max(hi, q["chunk"] + len(p["chunk"]))
        if get(rg, 5) is not None:
            put(rg, 5, I64, lo)
        if get(rg, 6) is not None:
            put(rg, 6, I64, hi - lo)
    f = write_struct(footer)
    out += f + struct.pack("<I", len(f)) + b"PAR1"
    before = pq.read_table(path)
    with open(path, "wb") as fh:
        fh.write(out)
    assert pq.read_table(path).equals(before), "the re-laid file reads differently"
    return len(out)


def make(d, layout):
    from deltalake import BloomFilterProperties, ColumnProperties, WriterProperties, write_deltalake
    t = f"{d}/t"
    wp = WriterProperties(
        max_row_group_size=GROUP,
        default_column_properties=ColumnProperties(statistics_enabled="PAGE", bloom_filter_properties=BloomFilterProperties(True, 0.01, GROUP)))
    write_deltalake(t, data(), writer_properties=wp)
    [f] = glob.glob(f"{t}/*.parquet")
    if layout == "as-written":
        return
    size = relay(f, layout)
    [log] = glob.glob(f"{t}/_delta_log/00000000000000000000.json")
    lines = []
    for line in open(log):
        a = json.loads(line)
        if "add" in a:
            a["add"]["size"] = size
        lines.append(json.dumps(a))
    with open(log, "w") as fh:
        fh.write("\n".join(lines) + "\n")


cmd = sys.argv[1]
if cmd == "make":
    make(sys.argv[2], sys.argv[3])
elif cmd == "rows":
    from deltalake import DeltaTable
    t = DeltaTable(sys.argv[2]).to_pyarrow_table().sort_by("n")
    print(json.dumps([[u, n, p] for u, n, p in zip(*(t.column(k).to_pylist() for k in ("user_id", "n", "pad")))]))
elif cmd == "indexes":
    md = pq.ParquetFile(sys.argv[2]).metadata
    out = []
    for g in range(md.num_row_groups):
        row = []
        for c in range(md.num_columns):
            cc = md.row_group(g).column(c)
            row.append([cc.has_column_index, cc.has_offset_index, cc.to_dict().get("bloom_filter_offset") is not None])
        out.append(row)
    print(json.dumps(out))
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)

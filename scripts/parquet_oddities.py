#!/usr/bin/env python3
"""Parquet files other writers produce that mainstream readers accept, for Tests/ParquetTests.

CI cannot fetch the Apache parquet-testing files, so this script writes equivalents of
the cases that matter: pyarrow writes a file, then its pages or footer are patched
byte for byte (a small Thrift compact codec below re-encodes the footer and page
headers and re-lays the column chunks).

  parquet_oddities.py generate OUTDIR   write the files and OUTDIR/manifest.json:
                                        [{name, path, base, pyarrow}] where `base` is the
                                        unpatched file with the same rows and `pyarrow`
                                        says whether pyarrow reads `path` equal to `base`
  parquet_oddities.py codecs FILE       the codec of every column chunk (JSON list)

Cases:
  hadoop_lz4           codec LZ4 (5) with Hadoop framing (4-byte big-endian uncompressed
                       and compressed lengths before each LZ4 block), as parquet-mr writes
  hadoop_lz4_frames    the same with several frames per page
  raw_lz4              codec LZ4 (5) holding bare LZ4 blocks (older parquet-cpp)
  v2_empty_values      a v2 data page of an all-null column whose compressed value
                       section is zero bytes (no codec stream at all)
  footer_rows_zero     footer num_rows 0 while the row groups hold rows
  dict_offset_missing  dictionary_page_offset absent and data_page_offset pointing at the
                       dictionary page (parquet-mr 1.x, as in nation.dict-malformed.parquet)
  dict_header_uncounted  created by "parquet-mr" (no version) whose column chunks' sizes leave
                       out the dictionary page header (PARQUET-816; nation.dict-malformed.parquet)
"""
import json
import os
import struct
import sys

import pyarrow as pa
import pyarrow.parquet as pq


# ---- Thrift compact protocol (generic: a struct is a list of [field id, type, value]) ----

def _uvarint(b, i):
    shift = v = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i


def _zz(v):
    return (v >> 1) ^ -(v & 1)


def _read_value(b, i, t):
    if t in (1, 2):
        return t == 1, i
    if t == 3:
        return b[i], i + 1
    if t in (4, 5, 6):
        v, i = _uvarint(b, i)
        return _zz(v), i
    if t == 7:
        return bytes(b[i:i + 8]), i + 8
    if t == 8:
        n, i = _uvarint(b, i)
        return bytes(b[i:i + n]), i + n
    if t in (9, 10):
        h = b[i]
        i += 1
        n, et = h >> 4, h & 15
        if n == 15:
            n, i = _uvarint(b, i)
        items = []
        for _ in range(n):
            if et in (1, 2):
                items.append(b[i] == 1)
                i += 1
            else:
                v, i = _read_value(b, i, et)
                items.append(v)
        return ("list", et, items), i
    if t == 12:
        return read_struct(b, i)
    raise ValueError(f"thrift type {t}")


def read_struct(b, i=0):
    fields, last = [], 0
    while True:
        h = b[i]
        i += 1
        if h == 0:
            return fields, i
        t, d = h & 15, h >> 4
        if d:
            fid = last + d
        else:
            v, i = _uvarint(b, i)
            fid = _zz(v)
        v, i = _read_value(b, i, t)
        fields.append([fid, t, v])
        last = fid


def _w_uvarint(v):
    out = bytearray()
    while True:
        if v < 0x80:
            out.append(v)
            return bytes(out)
        out.append(v & 0x7F | 0x80)
        v >>= 7


def _w_zz(v, bits):
    return (v << 1) ^ (v >> (bits - 1))


def _write_value(t, v):
    if t in (1, 2):
        return b""
    if t == 3:
        return bytes([v & 0xFF])
    if t in (4, 5, 6):
        return _w_uvarint(_w_zz(v, {4: 16, 5: 32, 6: 64}[t]))
    if t == 7:
        return bytes(v)
    if t == 8:
        return _w_uvarint(len(v)) + bytes(v)
    if t in (9, 10):
        _, et, items = v
        n = len(items)
        out = bytearray([(n << 4 | et) if n < 15 else (0xF0 | et)])
        if n >= 15:
            out += _w_uvarint(n)
        for x in items:
            out += bytes([1 if x else 2]) if et in (1, 2) else _write_value(et, x)
        return bytes(out)
    if t == 12:
        return write_struct(v)
    raise ValueError(f"thrift type {t}")


def write_struct(fields):
    out, last = bytearray(), 0
    for fid, t, v in fields:
        if t in (1, 2):
            t = 1 if v else 2
        d = fid - last
        if 0 < d <= 15:
            out.append(d << 4 | t)
        else:
            out.append(t)
            out += _w_uvarint(_w_zz(fid, 16))
        out += _write_value(t, v)
        last = fid
    out.append(0)
    return bytes(out)


def get(s, fid):
    for f in s:
        if f[0] == fid:
            return f[2]
    return None


def put(s, fid, t, v):
    """Sets field `fid` (type `t`), or removes it when v is None; keeps ids in order."""
    s[:] = [f for f in s if f[0] != fid]
    if v is not None:
        s.append([fid, t, v])
        s.sort(key=lambda f: f[0])


# ---- re-laying a file page by page -----------------------------------------------------

I32, I64, STRUCT = 5, 6, 12


def repage(src, dst, page_fn=None, footer_fn=None):
    """Copies `src` to `dst` page by page: page_fn(header, body, column_meta) -> (header, body)
    may change a page (and the chunk's codec in column_meta); offsets and sizes are recomputed.
    Page indexes and bloom filters are dropped."""
    b = open(src, "rb").read()
    flen = struct.unpack("<I", b[-8:-4])[0]
    footer, _ = read_struct(b[len(b) - 8 - flen:len(b) - 8])
    out = bytearray(b"PAR1")
    for rg in get(footer, 4)[2]:
        rg_start = len(out)
        for cc in get(rg, 1)[2]:
            md = get(cc, 3)
            start = get(md, 11) if get(md, 11) is not None and get(md, 11) < get(md, 9) else get(md, 9)
            end = start + get(md, 7)
            pos, chunk = start, bytearray()
            first_dict = first_data = None
            uncompressed = 0
            while pos < end:
                h, j = read_struct(b, pos)
                body = b[j:j + get(h, 3)]
                pos = j + get(h, 3)
                if page_fn:
                    h, body = page_fn(h, body, md)
                put(h, 3, I32, len(body))
                at = len(out) + len(chunk)
                if get(h, 1) == 2 and first_dict is None:
                    first_dict = at
                if get(h, 1) in (0, 3) and first_data is None:
                    first_data = at
                head = write_struct(h)
                uncompressed += len(head) + get(h, 2)
                chunk += head + body
            put(md, 9, I64, first_data)
            put(md, 11, I64, first_dict)
            put(md, 7, I64, len(chunk))
            put(md, 6, I64, uncompressed)
            put(md, 14, I64, None)
            put(md, 15, I32, None)
            for fid in (4, 5, 6, 7):
                put(cc, fid, I64 if fid in (4, 6) else I32, None)
            put(cc, 2, I64, first_dict if first_dict is not None else first_data)
            out += chunk
        put(rg, 5, I64, rg_start)
        put(rg, 6, I64, len(out) - rg_start)
    if footer_fn:
        footer_fn(footer)
    f = write_struct(footer)
    out += f + struct.pack("<I", len(f)) + b"PAR1"
    with open(dst, "wb") as fh:
        fh.write(out)


# ---- the cases -------------------------------------------------------------------------

def hadoop_frames(data, frame=None):
    import lz4.block
    frame = frame or max(1, len(data))
    out = bytearray()
    for k in range(0, max(len(data), 1), frame):
        part = data[k:k + frame]
        block = lz4.block.compress(bytes(part), store_size=False)
        out += struct.pack(">II", len(part), len(block)) + block
    return bytes(out)


def to_lz4(mode, frame=None):
    import lz4.block

    def fn(h, body, md):
        put(md, 4, I32, 5)   # codec LZ4
        if get(h, 1) == 3:   # v2: the levels stay uncompressed
            dh = get(h, 8)
            lv = get(dh, 5) + get(dh, 6)
            levels, values = body[:lv], body[lv:]
        else:
            levels, values = b"", body
        packed = hadoop_frames(values, frame) if mode == "hadoop" else lz4.block.compress(bytes(values), store_size=False)
        return h, levels + packed
    return fn


def empty_v2_values(h, body, md):
    if get(h, 1) == 3:
        dh = get(h, 8)
        lv = get(dh, 5) + get(dh, 6)
        if get(h, 2) == lv and len(body) > lv:
            body = body[:lv]
    return h, body


def table(rows=600):
    ids = list(range(rows))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "user": pa.array([f"u-{i % 37:03d}" for i in ids], pa.string()),
        "score": pa.array([None if i % 5 == 0 else i * 0.5 for i in ids], pa.float64()),
        "note": pa.array([("n" * (i % 7)) if i % 3 else None for i in ids], pa.string()),
    })


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    manifest = []
    t = table()

    def add(name, base, fn=None, footer_fn=None):
        path = os.path.join(outdir, name + ".parquet")
        repage(base, path, fn, footer_fn)
        try:
            ok = pq.read_table(path).equals(pq.read_table(base))
        except Exception:  # noqa: BLE001
            ok = False
        manifest.append({"name": name, "path": path, "base": base, "pyarrow": ok})

    plain = os.path.join(outdir, "base_uncompressed.parquet")
    pq.write_table(t, plain, compression="none", row_group_size=250, data_page_size=1024, write_statistics=True)
    add("hadoop_lz4", plain, to_lz4("hadoop"))
    add("hadoop_lz4_frames", plain, to_lz4("hadoop", frame=97))
    add("raw_lz4", plain, to_lz4("raw"))

    nulls = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "f": pa.array([None, None, None], pa.float32()),
                      "s": pa.array(["a", None, "c"], pa.string())})
    snappy_v2 = os.path.join(outdir, "base_snappy_v2_nulls.parquet")
    pq.write_table(nulls, snappy_v2, compression="snappy", data_page_version="2.0", use_dictionary=False)
    add("v2_empty_values", snappy_v2, empty_v2_values)

    snappy = os.path.join(outdir, "base_snappy.parquet")
    pq.write_table(t, snappy, compression="snappy", row_group_size=200)
    add("footer_rows_zero", snappy, footer_fn=lambda f: put(f, 3, I64, 0))

    def no_dict_offset(h, body, md):
        return h, body

    def drop_dict_offsets(footer):
        for rg in get(footer, 4)[2]:
            for cc in get(rg, 1)[2]:
                md = get(cc, 3)
                d = get(md, 11)
                if d is not None:
                    put(md, 9, I64, d)
                    put(md, 11, I64, None)
                    put(md, 2, 9, ("list", 5, []))   # parquet-mr 1.x left the encodings empty too
    add("dict_offset_missing", snappy, no_dict_offset, drop_dict_offsets)

    # PARQUET-816: parquet-mr <= 1.2.8 did not count the dictionary page header in the chunk size.
    path = os.path.join(outdir, "dict_header_uncounted.parquet")
    repage(snappy, path)
    b = bytearray(open(path, "rb").read())
    flen = struct.unpack("<I", b[-8:-4])[0]
    footer, _ = read_struct(b[len(b) - 8 - flen:len(b) - 8])
    for rg in get(footer, 4)[2]:
        for cc in get(rg, 1)[2]:
            md = get(cc, 3)
            start = get(md, 11) if get(md, 11) is not None else get(md, 9)
            h, body_start = read_struct(b, start)
            if get(h, 1) == 2:
                put(md, 7, I64, get(md, 7) - (body_start - start))
    put(footer, 6, 8, b"parquet-mr")
    f = write_struct(footer)
    open(path, "wb").write(bytes(b[:len(b) - 8 - flen]) + f + struct.pack("<I", len(f)) + b"PAR1")
    try:
        ok = pq.read_table(path).equals(pq.read_table(snappy))
    except Exception:  # noqa: BLE001
        ok = False
    manifest.append({"name": "dict_header_uncounted", "path": path, "base": snappy, "pyarrow": ok})

    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    print(json.dumps(manifest))


def codecs(path):
    b = open(path, "rb").read()
    flen = struct.unpack("<I", b[-8:-4])[0]
    footer, _ = read_struct(b[len(b) - 8 - flen:len(b) - 8])
    print(json.dumps([get(get(cc, 3), 4) for rg in get(footer, 4)[2] for cc in get(rg, 1)[2]]))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
    elif sys.argv[1] == "codecs":
        codecs(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")

#!/usr/bin/env python3
"""Parquet interop fixtures and oracles for Tests/ParquetTests.

  parquet_fixtures.py generate OUTDIR      write fixture files and, next to each, FILE.json
                                           (what pyarrow reads, as `dump` writes it); print
                                           and write OUTDIR/manifest.json
  parquet_fixtures.py dump FILE OUT.json   what pyarrow reads, per leaf column, in the
                                           canonical form the Swift tests produce
  parquet_fixtures.py verify ORIG NEW DROPPED.json
                                           check with pyarrow and DuckDB that NEW equals
                                           ORIG minus the dropped file rows, with the same
                                           Parquet schema and key/value metadata
  parquet_fixtures.py dumpall FILE...      dump each FILE to FILE.json
  parquet_fixtures.py verifyall JOBS.json  the same for a list of {name, orig, new, dropped};
                                           prints [{name, errors}]
  parquet_fixtures.py read FILE            row count as pyarrow and DuckDB see it (JSON)

Canonical leaf values (strings): BOOLEAN true/false; INT32/INT64 signed decimal of
the physical value; FLOAT/DOUBLE hex of the IEEE bits; INT96, BYTE_ARRAY and
FIXED_LEN_BYTE_ARRAY hex of the bytes. Repeated nodes become lists, undefined
optional nodes null.

Next to them, per leaf column, `canonical`: each row's value in Lethe's canonical text
(docs/formats.md, "Canonical subject values"), computed here from the logical values
pyarrow reads (Python's calendar and Decimal, not Lethe's code), as hex of the UTF-8
bytes; for FLOAT/DOUBLE/FLOAT16, whose text is Swift's shortest round trip,
`f32:`/`f64:`/`f16:` and the hex bits instead (the test checks the text parses back to
them). Repeated columns give each row the list of its elements' values.
"""
import datetime
import decimal
import json
import os
import random
import struct
import sys

import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 1000


def flat_table(seed=1, rows=ROWS):
    rnd = random.Random(seed)

    def maybe(v, p=0.15):
        return None if rnd.random() < p else v

    def ints(lo, hi):
        return [maybe(rnd.randint(lo, hi)) for _ in range(rows)]

    words = ["alice", "bob", "carol", "dave", "eve", "mallory", "trent", "peggy", "victor", "walter"]
    subjects = [f"user-{rnd.randint(0, 120):04d}" for _ in range(rows)]
    base_ts = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cols = {
        "subject": pa.array(subjects, pa.string()),
        "id": pa.array(list(range(rows)), pa.int64()),
        "b": pa.array([maybe(rnd.random() < 0.5) for _ in range(rows)], pa.bool_()),
        "i8": pa.array(ints(-128, 127), pa.int8()),
        "i16": pa.array(ints(-32768, 32767), pa.int16()),
        "i32": pa.array(ints(-2**31, 2**31 - 1), pa.int32()),
        "i64": pa.array(ints(-2**63, 2**63 - 1), pa.int64()),
        "u8": pa.array(ints(0, 255), pa.uint8()),
        "u16": pa.array(ints(0, 65535), pa.uint16()),
        "u32": pa.array(ints(0, 2**32 - 1), pa.uint32()),
        "u64": pa.array(ints(0, 2**64 - 1), pa.uint64()),
        "f32": pa.array([maybe(struct.unpack("<f", struct.pack("<f", rnd.uniform(-1e6, 1e6)))[0]) for _ in range(rows)], pa.float32()),
        "f64": pa.array([maybe(rnd.uniform(-1e12, 1e12)) for _ in range(rows)], pa.float64()),
        "f16": pa.array([maybe(float(rnd.randint(-2000, 2000)) / 8) for _ in range(rows)], pa.float16()),
        "s": pa.array([maybe(rnd.choice(words) * rnd.randint(0, 3)) for _ in range(rows)], pa.string()),
        "ls": pa.array([maybe("ł" + rnd.choice(words)) for _ in range(rows)], pa.large_string()),
        "bin": pa.array([maybe(bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 12)))) for _ in range(rows)], pa.binary()),
        "fixed": pa.array([maybe(bytes(rnd.randrange(256) for _ in range(16))) for _ in range(rows)], pa.binary(16)),
        "dec9": pa.array([maybe(decimal.Decimal(rnd.randint(-10**8, 10**8)).scaleb(-2)) for _ in range(rows)], pa.decimal128(9, 2)),
        "dec30": pa.array([maybe(decimal.Decimal(rnd.randint(-10**29, 10**29)).scaleb(-5)) for _ in range(rows)], pa.decimal128(30, 5)),
        "date": pa.array([maybe(datetime.date(2000, 1, 1) + datetime.timedelta(days=rnd.randint(0, 9000))) for _ in range(rows)], pa.date32()),
        "t32": pa.array(ints(0, 86399999), pa.time32("ms")),
        "t64": pa.array(ints(0, 86399999999), pa.time64("us")),
        "t64n": pa.array(ints(0, 86399999999999), pa.time64("ns")),
        "ts_ms": pa.array([maybe(base_ts + datetime.timedelta(milliseconds=rnd.randint(0, 10**10))) for _ in range(rows)], pa.timestamp("ms")),
        "ts_us_utc": pa.array([maybe(base_ts + datetime.timedelta(microseconds=rnd.randint(0, 10**13))) for _ in range(rows)], pa.timestamp("us", tz="UTC")),
        "ts_ns": pa.array(ints(0, 2**62), pa.timestamp("ns")),
        "req": pa.array([rnd.randint(0, 50) for _ in range(rows)], pa.int32()),
    }
    schema = pa.schema([pa.field(k, v.type, nullable=(k not in ("req", "id"))) for k, v in cols.items()],
                       metadata={b"origin": b"lethe-fixture"})
    return pa.table(list(cols.values()), schema=schema)


def nested_table(seed=2, rows=ROWS):
    rnd = random.Random(seed)

    def maybe(v, p=0.15):
        return None if rnd.random() < p else v

    def small_list(make, maxlen=4):
        return maybe([make() for _ in range(rnd.randint(0, maxlen))])

    subjects = [f"user-{rnd.randint(0, 120):04d}" for _ in range(rows)]
    point = pa.struct([pa.field("x", pa.int32()), pa.field("y", pa.float64()), pa.field("label", pa.string())])
    item = pa.struct([pa.field("sku", pa.string(), nullable=False), pa.field("qty", pa.int32())])
    t = pa.table({
        "subject": pa.array(subjects, pa.string()),
        "user": pa.array([maybe({"id": s, "age": maybe(rnd.randint(1, 99)), "geo": maybe({"x": rnd.randint(-90, 90), "y": rnd.random(), "label": maybe("p")})}) for s in subjects],
                         pa.struct([pa.field("id", pa.string()), pa.field("age", pa.int32()), pa.field("geo", point)])),
        "tags": pa.array([small_list(lambda: maybe(rnd.choice(["a", "b", "cc", "ddd"]))) for _ in range(rows)], pa.list_(pa.string())),
        "nums": pa.array([small_list(lambda: maybe(rnd.randint(-1000, 1000))) for _ in range(rows)], pa.list_(pa.int64())),
        "items": pa.array([small_list(lambda: maybe({"sku": f"sku{rnd.randint(0, 9)}", "qty": maybe(rnd.randint(1, 5))})) for _ in range(rows)], pa.list_(item)),
        "props": pa.array([maybe([(f"k{j}", maybe(rnd.randint(0, 9))) for j in range(rnd.randint(0, 3))]) for _ in range(rows)], pa.map_(pa.string(), pa.int32())),
        "matrix": pa.array([small_list(lambda: small_list(lambda: maybe(rnd.randint(0, 9)), 3), 3) for _ in range(rows)], pa.list_(pa.list_(pa.int32()))),
        "flags": pa.array([[rnd.random() < 0.5 for _ in range(rnd.randint(0, 3))] for _ in range(rows)], pa.list_(pa.field("item", pa.bool_(), nullable=False))),
    })
    return t


def logical_table(seed=3, rows=400):
    """Logical types people type differently from their physical form."""
    import uuid
    rnd = random.Random(seed)

    def maybe(v, p=0.1):
        return None if rnd.random() < p else v
    return pa.table({
        "subject": pa.array([f"user-{rnd.randint(0, 60):04d}" for _ in range(rows)], pa.string()),
        "d9": pa.array([maybe(decimal.Decimal(rnd.randint(-10**8, 10**8)).scaleb(-2)) for _ in range(rows)], pa.decimal128(9, 2)),
        "d18": pa.array([maybe(decimal.Decimal(rnd.randint(-10**17, 10**17)).scaleb(-4)) for _ in range(rows)], pa.decimal128(18, 4)),
        "d0": pa.array([maybe(decimal.Decimal(rnd.randint(-10**6, 10**6))) for _ in range(rows)], pa.decimal128(7, 0)),
        "small": pa.array([maybe(decimal.Decimal(rnd.randint(-99, 99)).scaleb(-3)) for _ in range(rows)], pa.decimal128(5, 3)),
        "d38": pa.array([maybe(decimal.Decimal(rnd.randint(-10**37, 10**37)).scaleb(-10)) for _ in range(rows)], pa.decimal128(38, 10)),
        "uuid": pa.array([maybe(uuid.UUID(int=rnd.getrandbits(128)).bytes) for _ in range(rows)], pa.uuid()),
        "date": pa.array([maybe(datetime.date(1, 1, 1) + datetime.timedelta(days=rnd.randint(0, 3_652_058))) for _ in range(rows)], pa.date32()),
        "ts_s_utc": pa.array([maybe(rnd.randint(-2**35, 2**35)) for _ in range(rows)], pa.timestamp("s", tz="UTC")),
        "ts_ms_local": pa.array([maybe(rnd.randint(-2**45, 2**45)) for _ in range(rows)], pa.timestamp("ms")),
        "ts_ns_utc": pa.array([maybe(rnd.randint(-2**62, 2**62)) for _ in range(rows)], pa.timestamp("ns", tz="UTC")),
        "t_ns": pa.array([maybe(rnd.randint(0, 86399999999999)) for _ in range(rows)], pa.time64("ns")),
        "f16": pa.array([maybe(float(rnd.randint(-4000, 4000)) / 16) for _ in range(rows)], pa.float16()),
        "enum": pa.array([maybe(rnd.choice(["red", "green", "blue"])) for _ in range(rows)], pa.dictionary(pa.int8(), pa.string())),
    })


def write_pyarrow(out, name, table, manifest, **kw):
    path = os.path.join(out, name + ".parquet")
    pq.write_table(table, path, **kw)
    manifest.append({"name": name, "path": path, "writer": "pyarrow"})


def generate(out):
    os.makedirs(out, exist_ok=True)
    manifest = []
    flat = flat_table()
    nested = nested_table()
    for codec in ["none", "snappy", "gzip", "zstd", "lz4"]:
        for v in ["1.0", "2.0"]:
            write_pyarrow(out, f"flat_{codec}_v{v[0]}", flat, manifest, compression=codec, data_page_version=v,
                          row_group_size=300, data_page_size=2048, write_statistics=True)
    write_pyarrow(out, "flat_plain", flat, manifest, use_dictionary=False, compression="snappy", row_group_size=400)
    write_pyarrow(out, "flat_crc_index", flat, manifest, compression="zstd", row_group_size=250, write_page_checksum=True,
                  write_page_index=True, data_page_size=1024, data_page_version="2.0")
    write_pyarrow(out, "flat_bloom", flat, manifest, compression="snappy", row_group_size=500,
                  bloom_filter_options={"subject": {"ndv": 200, "fpp": 0.01}} if True else None)
    write_pyarrow(out, "int96", flat.select(["subject", "id", "ts_ns", "ts_us_utc"]), manifest,
                  use_deprecated_int96_timestamps=True, row_group_size=300)
    for v in ["1.0", "2.0"]:
        enc = {"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "id": "DELTA_BINARY_PACKED",
               "s": "DELTA_LENGTH_BYTE_ARRAY", "subject": "DELTA_BYTE_ARRAY", "bin": "DELTA_BYTE_ARRAY",
               "f32": "BYTE_STREAM_SPLIT", "f64": "BYTE_STREAM_SPLIT",
               "i16": "BYTE_STREAM_SPLIT", "dec30": "DELTA_BYTE_ARRAY", "b": "RLE" if v == "2.0" else "PLAIN"}
        write_pyarrow(out, f"encodings_v{v[0]}", flat.select(list(enc.keys())), manifest, use_dictionary=False,
                      column_encoding=enc, data_page_version=v, compression="snappy", row_group_size=300, data_page_size=1024)
    # DuckDB cannot read BYTE_STREAM_SPLIT on FIXED_LEN_BYTE_ARRAY, so it gets its own file.
    write_pyarrow(out, "encodings_bss_flba", flat.select(["subject", "fixed", "f16", "dec30"]), manifest, use_dictionary=False,
                  column_encoding={"subject": "PLAIN", "fixed": "BYTE_STREAM_SPLIT", "f16": "BYTE_STREAM_SPLIT",
                                   "dec30": "BYTE_STREAM_SPLIT"}, compression="zstd", row_group_size=300)
    for v in ["1.0", "2.0"]:
        write_pyarrow(out, f"nested_v{v[0]}", nested, manifest, compression="snappy", data_page_version=v,
                      row_group_size=250, data_page_size=1024)
    write_pyarrow(out, "nested_plain", nested, manifest, compression="gzip", use_dictionary=False, row_group_size=400)
    write_pyarrow(out, "single_group", flat.slice(0, 50), manifest, compression="zstd")
    # Small files for the mutation test.
    write_pyarrow(out, "small_plain_crc", flat.slice(0, 60), manifest, compression="none", write_page_checksum=True,
                  row_group_size=30, data_page_size=512)
    write_pyarrow(out, "small_nested_v2", nested.slice(0, 60), manifest, compression="snappy", data_page_version="2.0",
                  row_group_size=30, data_page_size=512)
    write_pyarrow(out, "small_encodings", flat.slice(0, 60).select(["subject", "i32", "s", "f64", "b"]), manifest,
                  use_dictionary=False, column_encoding={"subject": "DELTA_BYTE_ARRAY", "i32": "DELTA_BINARY_PACKED",
                                                         "s": "DELTA_LENGTH_BYTE_ARRAY", "f64": "BYTE_STREAM_SPLIT", "b": "RLE"},
                  data_page_version="2.0", compression="lz4", row_group_size=30)
    write_pyarrow(out, "empty", flat.slice(0, 0), manifest)
    logical = logical_table()
    # A list column whose rows each hold one subject (repeated or not), and one whose rows hold several.
    lists = pa.table({
        "id": pa.array(range(8), pa.int64()),
        "one": pa.array([["u1"], ["u1", "u1"], [], None, ["u2", None], [None], ["u3"], ["u2", "u2", "u2"]], pa.list_(pa.string())),
        "many": pa.array([["u1", "u2"], ["u1"], [], None, ["u2"], ["u3"], ["u3"], ["u4"]], pa.list_(pa.string())),
        "dates": pa.array([[datetime.date(2021, 1, 3)], None, [datetime.date(2021, 1, 3)] * 2, [], [None], [datetime.date(1999, 12, 31)],
                           [datetime.date(2000, 2, 29)], None], pa.list_(pa.date32())),
    })
    write_pyarrow(out, "lists_one_subject", lists, manifest, compression="snappy", row_group_size=5)
    write_pyarrow(out, "logical_dict", logical, manifest, compression="snappy", row_group_size=150)
    write_pyarrow(out, "logical_plain_ints", logical, manifest, compression="zstd", row_group_size=150,
                  use_dictionary=False, store_decimal_as_integer=True, data_page_version="2.0")
    write_pyarrow(out, "logical_dict_ints", logical, manifest, compression="none", row_group_size=400,
                  store_decimal_as_integer=True)

    import duckdb
    con = duckdb.connect()
    con.register("flat", flat.drop_columns(["f16", "t64n", "u64", "ls"]))
    con.register("nested", nested)
    con.register("flat_v2", flat.drop_columns(["f16", "t64n", "u64", "ls", "i32", "u32"]))
    for name, src, opts in [
        ("duck_flat_zstd", "flat", "COMPRESSION zstd, ROW_GROUP_SIZE 300"),
        # i32/u32 left out: pyarrow cannot read DuckDB 2.0's DELTA_BINARY_PACKED INT32 pages.
        ("duck_flat_snappy_v2", "flat_v2", "COMPRESSION snappy, ROW_GROUP_SIZE 300, PARQUET_VERSION v2"),
        ("duck_flat_gzip", "flat", "COMPRESSION gzip, ROW_GROUP_SIZE 500"),
        ("duck_nested", "nested", "COMPRESSION zstd, ROW_GROUP_SIZE 300"),
        ("duck_nested_v2", "nested", "COMPRESSION uncompressed, ROW_GROUP_SIZE 300, PARQUET_VERSION v2"),
    ]:
        path = os.path.join(out, name + ".parquet")
        con.execute(f"COPY (SELECT * FROM {src} ORDER BY id) TO '{path}' (FORMAT parquet, {opts})"
                    if src.startswith("flat") else f"COPY (SELECT * FROM {src}) TO '{path}' (FORMAT parquet, {opts})")
        manifest.append({"name": name, "path": path, "writer": "duckdb"})
    for m in manifest:
        m["expected"] = m["path"] + ".json"
        dump(m["path"], m["expected"])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    print(json.dumps(manifest))


# ---- canonical dump -------------------------------------------------------------

def physicalize(t):
    """The arrow type whose to_pylist gives physical values (or easy conversions)."""
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, physicalize(f.type), f.nullable) for f in t])
    if pa.types.is_map(t):
        return pa.map_(physicalize(t.key_type), physicalize(t.item_type))
    if pa.types.is_large_list(t):
        return pa.large_list(pa.field(t.value_field.name, physicalize(t.value_type), t.value_field.nullable))
    if pa.types.is_list(t):
        return pa.list_(pa.field(t.value_field.name, physicalize(t.value_type), t.value_field.nullable))
    if pa.types.is_timestamp(t) or pa.types.is_date64(t) or pa.types.is_time64(t) or pa.types.is_duration(t):
        return pa.int64()
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return pa.int32()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return physicalize(t.value_type)
    return t


def leaf_count(t):
    if pa.types.is_struct(t):
        return sum(leaf_count(f.type) for f in t)
    if pa.types.is_map(t):
        return leaf_count(t.key_type) + leaf_count(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return leaf_count(t.value_type)
    return 1


def project(value, t, leaves_out_types):
    """Per-leaf projections of one value (list, one entry per leaf)."""
    if pa.types.is_struct(t):
        out = []
        for f in t:
            out.extend(project(None if value is None else value[f.name], f.type, leaves_out_types))
        return out
    if pa.types.is_map(t):
        nk, nv = leaf_count(t.key_type), leaf_count(t.item_type)
        if value is None:
            return [None] * (nk + nv)
        per = [project(k, t.key_type, None) + project(v, t.item_type, None) for k, v in value]
        return [[p[i] for p in per] for i in range(nk + nv)]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        n = leaf_count(t.value_type)
        if value is None:
            return [None] * n
        per = [project(e, t.value_type, None) for e in value]
        return [[p[i] for p in per] for i in range(n)]
    return [value]


def canon_leaf(v, col, arrow_leaf_type):
    if v is None:
        return None
    if isinstance(v, list):
        return [canon_leaf(x, col, arrow_leaf_type) for x in v]
    phys = col.physical_type
    if phys == "BOOLEAN":
        return "true" if v else "false"
    if phys == "INT96":
        ns = v
        days, nanos = divmod(ns, 86400 * 10**9)
        return (nanos.to_bytes(8, "little") + (days + 2440588).to_bytes(4, "little", signed=True)).hex()
    if phys in ("INT32", "INT64"):
        if isinstance(v, decimal.Decimal):
            v = int(v.scaleb(arrow_leaf_type.scale))
        bits = 32 if phys == "INT32" else 64
        v = int(v)
        if v >= 2 ** (bits - 1):
            v -= 2 ** bits
        return str(v)
    if phys == "FLOAT":
        return struct.pack("<f", v)[::-1].hex()
    if phys == "DOUBLE":
        return struct.pack("<d", v)[::-1].hex()
    if phys == "FIXED_LEN_BYTE_ARRAY":
        if isinstance(v, decimal.Decimal):
            return int(v.scaleb(arrow_leaf_type.scale)).to_bytes(col.length, "big", signed=True).hex()
        if isinstance(v, float):
            return struct.pack("<e", v).hex()
        if hasattr(v, "bytes") and not isinstance(v, (bytes, bytearray)):   # uuid.UUID
            return v.bytes.hex()
        return bytes(v).hex()
    if isinstance(v, decimal.Decimal):
        u = int(v.scaleb(arrow_leaf_type.scale))
        n = max(1, (u.bit_length() + 8) // 8)
        return u.to_bytes(n, "big", signed=True).hex()
    if isinstance(v, str):
        return v.encode().hex()
    return bytes(v).hex()


def _unit(lt):
    return {"milliseconds": (1000, 3), "microseconds": (10**6, 6), "nanoseconds": (10**9, 9)}[lt["timeUnit"]]


def _time_text(secs, frac, digits):
    s = "%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
    if frac:
        s += "." + ("%0*d" % (digits, frac)).rstrip("0")
    return s


def _ts_text(v, per_sec, digits, utc):
    days, rem = divmod(v, 86400 * per_sec)
    secs, frac = divmod(rem, per_sec)
    return datetime.date.fromordinal(719163 + days).isoformat() + "T" + _time_text(secs, frac, digits) + ("Z" if utc else "")


def canon_text(v, col, arrow_leaf_type):
    """The canonical text of one physicalized value (hex of its UTF-8), or a float marker."""
    if v is None:
        return None
    if isinstance(v, list):
        return [canon_text(x, col, arrow_leaf_type) for x in v]
    lt = json.loads(col.logical_type.to_json())
    kind = lt.get("Type", "None")
    ct = str(col.converted_type)
    phys = col.physical_type

    def text(s):
        return s.encode().hex()
    if kind == "Decimal" or ct == "DECIMAL":
        if not isinstance(v, decimal.Decimal):   # BYTE_ARRAY/FLBA handed over as bytes
            v = decimal.Decimal(int.from_bytes(bytes(v), "big", signed=True)).scaleb(-col.scale)
        with decimal.localcontext() as ctx:
            ctx.prec = 200
            return text(format(v.quantize(decimal.Decimal(1).scaleb(-col.scale)), "f"))
    if phys == "BOOLEAN":
        return text("true" if v else "false")
    if phys == "INT96":
        return text(_ts_text(v, 10**9, 9, True))
    if phys == "FLOAT":
        return "f32:" + struct.pack(">f", v).hex()
    if phys == "DOUBLE":
        return "f64:" + struct.pack(">d", v).hex()
    if kind == "Float16":
        return "f16:" + struct.pack(">e", v).hex()
    if kind == "UUID":
        import uuid
        return text(str(v if isinstance(v, uuid.UUID) else uuid.UUID(bytes=bytes(v))))
    if phys in ("INT32", "INT64"):
        v = int(v)
        if kind == "Date" or ct == "DATE":
            return text(datetime.date.fromordinal(719163 + v).isoformat())
        if kind == "Time":
            per, digits = _unit(lt)
            return text(_time_text(v // per, v % per, digits))
        if ct in ("TIME_MILLIS", "TIME_MICROS"):
            per, digits = (1000, 3) if ct == "TIME_MILLIS" else (10**6, 6)
            return text(_time_text(v // per, v % per, digits))
        if kind == "Timestamp":
            per, digits = _unit(lt)
            return text(_ts_text(v, per, digits, lt["isAdjustedToUTC"]))
        if ct in ("TIMESTAMP_MILLIS", "TIMESTAMP_MICROS"):
            per, digits = (1000, 3) if ct == "TIMESTAMP_MILLIS" else (10**6, 6)
            return text(_ts_text(v, per, digits, True))
        bits = 32 if phys == "INT32" else 64
        unsigned = (kind == "Int" and not lt.get("isSigned", True)) or ct.startswith("UINT")
        if unsigned and v < 0:
            v += 2 ** bits
        if not unsigned and v >= 2 ** (bits - 1):
            v -= 2 ** bits
        return text(str(v))
    if isinstance(v, str):
        return v.encode().hex()
    return bytes(v).hex()


def arrow_leaves(t):
    if pa.types.is_struct(t):
        return [x for f in t for x in arrow_leaves(f.type)]
    if pa.types.is_map(t):
        return arrow_leaves(t.key_type) + arrow_leaves(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return arrow_leaves(t.value_type)
    return [t]


def dump(path, out):
    pf = pq.ParquetFile(path)
    table = pf.read()
    pschema = pf.schema
    columns = []
    leaf = 0
    for field in table.schema:
        col = table.column(field.name)
        col = col.cast(physicalize(field.type)) if physicalize(field.type) != field.type else col
        n = leaf_count(field.type)
        orig_leaves = arrow_leaves(field.type)
        per_row = [project(v, physicalize(field.type), None) for v in col.to_pylist()]
        for i in range(n):
            c = pschema.column(leaf + i)
            def safe(v):
                try:
                    return canon_text(v, c, orig_leaves[i])
                except ValueError:   # a date Python cannot hold (INT96 wrapped, see below)
                    return None
            canonical = [safe(r[i]) for r in per_row]
            if c.physical_type == "INT96" and n == 1:
                # pyarrow reads INT96 as nanoseconds and wraps values outside that range (years
                # before 1677 or after 2262); read in microseconds, those render exactly.
                us = pq.ParquetFile(path, coerce_int96_timestamp_unit="us").read().column(field.name).cast(pa.int64()).to_pylist()
                for r, u in enumerate(us):
                    if u is not None and not (-(2**63) // 1000 < u < (2**63) // 1000):
                        try:
                            canonical[r] = _ts_text(u, 10**6, 6, True).encode().hex()
                        except ValueError:
                            canonical[r] = None
            columns.append({
                "path": c.path,
                "physical": c.physical_type,
                "rows": [canon_leaf(r[i], c, orig_leaves[i]) for r in per_row],
                "canonical": canonical,
            })
        leaf += n
    with open(out, "w") as f:
        json.dump({"num_rows": table.num_rows, "columns": columns}, f)


# ---- erase verification ---------------------------------------------------------

def check_statistics(pf, table, errors):
    """Every flat column's min/max/null count must match the row group's data."""
    import pyarrow.compute as pc
    md = pf.metadata
    offset = 0
    for rg in range(md.num_row_groups):
        n = md.row_group(rg).num_rows
        part = table.slice(offset, n)
        offset += n
        for c in range(md.num_columns):
            col = md.row_group(rg).column(c)
            if "." in col.path_in_schema or col.path_in_schema not in part.column_names:
                continue
            st = col.statistics
            if st is None:
                continue
            data = part.column(col.path_in_schema)
            if st.has_null_count and st.null_count != data.null_count:
                errors.append(f"row group {rg} column {col.path_in_schema}: null_count {st.null_count} != {data.null_count}")
            t = data.type
            if not st.has_min_max or not (pa.types.is_integer(t) or pa.types.is_floating(t) and not pa.types.is_float16(t)
                                          or pa.types.is_string(t) or pa.types.is_date(t)):
                continue
            mm = pc.min_max(data)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if st.min != lo or st.max != hi:
                errors.append(f"row group {rg} column {col.path_in_schema}: stats min/max {st.min!r}/{st.max!r} != data {lo!r}/{hi!r}")


def verify(orig, new, dropped):
    """Returns (errors, duckdb_unsupported)."""
    import duckdb
    dropped = set(dropped)
    errors = []
    a, b = pq.ParquetFile(orig), pq.ParquetFile(new)
    if not a.schema.equals(b.schema):
        errors.append(f"Parquet schema differs:\n{a.schema}\nvs\n{b.schema}")
    for i in range(len(a.schema)):
        ca, cb = a.schema.column(i), b.schema.column(i)
        for attr in ("path", "physical_type", "logical_type", "converted_type", "max_definition_level",
                     "max_repetition_level", "length", "precision", "scale"):
            if str(getattr(ca, attr)) != str(getattr(cb, attr)):
                errors.append(f"column {ca.path}: {attr} {getattr(ca, attr)} != {getattr(cb, attr)}")
    if a.metadata.metadata != b.metadata.metadata:
        errors.append("key/value metadata differs")
    ta = a.read()
    keep = [i for i in range(ta.num_rows) if i not in dropped]
    expected = ta.take(pa.array(keep, pa.int64())) if keep else ta.slice(0, 0)
    got = b.read()
    if got.num_rows != len(keep):
        errors.append(f"pyarrow reads {got.num_rows} rows, expected {len(keep)}")
    elif not got.equals(expected):
        for name in expected.column_names:
            if not got.column(name).equals(expected.column(name)):
                errors.append(f"pyarrow: column {name} differs")
    check_statistics(b, got, errors)
    con = duckdb.connect()
    try:
        con.sql(f"SELECT * FROM read_parquet('{orig}')").to_arrow_table()
    except Exception:  # noqa: BLE001
        return errors, True
    try:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{new}')").fetchone()[0]
        if n != len(keep):
            errors.append(f"DuckDB reads {n} rows, expected {len(keep)}")
        lst = ",".join(str(i) for i in sorted(dropped)) or "-1"
        kept_orig = (f"SELECT * EXCLUDE (file_row_number) FROM read_parquet('{orig}', file_row_number=true) "
                     f"WHERE file_row_number NOT IN ({lst})")
        diff = con.execute(f"""
            SELECT count(*) FROM (
              ({kept_orig} EXCEPT ALL SELECT * FROM read_parquet('{new}'))
              UNION ALL
              (SELECT * FROM read_parquet('{new}') EXCEPT ALL {kept_orig}))""").fetchone()[0]
        if diff != 0:
            errors.append(f"DuckDB: {diff} rows differ from the original minus the dropped rows")
    except Exception as e:  # noqa: BLE001
        errors.append(f"DuckDB failed: {e}")
    return errors, False


def verify_all(jobs_path):
    jobs = json.load(open(jobs_path))
    out = []
    for j in jobs:
        unsupported = False
        try:
            errors, unsupported = verify(j["orig"], j["new"], j["dropped"])
        except Exception as e:  # noqa: BLE001
            errors = [f"verify crashed: {e!r}"]
        out.append({"name": j["name"], "errors": errors, "duckdb_unsupported": unsupported})
    print(json.dumps(out))


def read(path):
    import duckdb
    n = pq.ParquetFile(path).read().num_rows
    d = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    print(json.dumps({"pyarrow": n, "duckdb": d}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "generate":
        generate(sys.argv[2])
    elif cmd == "dump":
        dump(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        errs, unsupported = verify(sys.argv[2], sys.argv[3], json.load(open(sys.argv[4])))
        print(json.dumps({"ok": not errs, "errors": errs, "duckdb_unsupported": unsupported}))
    elif cmd == "dumpall":
        for path in sys.argv[2:]:
            dump(path, path + ".json")
    elif cmd == "verifyall":
        verify_all(sys.argv[2])
    elif cmd == "read":
        read(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")

"""Seed corpora for the fuzz targets (Fuzz/lethe-fuzz), written into OUTDIR/<target>/.

  python Fuzz/seeds.py OUTDIR [--corpora DIR]

Seeds come from what the tests use: the JSON Lines / CSV shapes of the format tests and
scripts/e2e, the Parquet fixtures of Tests/ParquetTests (scripts/parquet_fixtures.py
generate), small pyarrow files in every codec and encoding, delta-rs tables with commits,
checkpoints, change data and deletion vectors (scripts/delta_tables.py, scripts/delta_dv.py).
With --corpora (a local copy of parquet-testing and delta-rs's test tables), their files up
to 64 KiB are added too. OUTDIR is a build folder (.build-fuzz/seeds): nothing here is
committed.
"""
import argparse
import decimal
import glob
import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
MAX = 64 * 1024


class Seeds:
    def __init__(self, out):
        self.out = out
        self.count = {}

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode()
        if len(data) > MAX:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as fh:
            fh.write(data)
        self.count[target] = self.count.get(target, 0) + 1


JSON_DOCS = [
    '{"user":{"id":"s-1"},"n":1}',
    '{"item":{"id":"s-2"},"user":{"id":"s-3"},"n":2}',
    '{"n":3,"user":{"id":"s-2"}}',
    '{"user":{"name":"x","i\\u0064":"s-2"},"n":4}',
    '{"user":{"id":"s-4"},"note":"{\\"user\\":{\\"id\\":\\"s-2\\"}}","n":5}',
    '{"user":{"id":123},"id":-1.5e3,"a":{"b":{"c":"\\ud83d\\ude00"}},"user_id":null}',
    '{"user":{"id":"u\\u002d1","profile":{"id":"x"}},"tags":["a",{"id":1}],"ok":true,"no":false,"z":null}',
    '{"user.id":"literal","user":{"id":""}}',
    '[1,2,{"user":{"id":"s"}}]',
    '{"a":{"b":{"c":[{"d":1}]}},"id":"\\t\\n\\r\\b\\f\\/\\\\"}',
    '  {"user" : { "id" : "spaced" } }  ',
    '{"user":{"id":"dup"},"user":{"id":"dup2"}}',
    '{"n":0,"m":-0,"e":1E+10,"f":0.5e-3}',
    '"just a string"',
    '{"deep":' + '[' * 40 + ']' * 40 + '}',
]

CSV_TEXTS = [
    'id,name,city\nu-1,Ann,Oslo\nu-2,"Bob, Jr.",Lima\n"u-3","say ""hi""",Pune\n',
    'id,t,comment\r\nu-1,t1,"two\r\nlines"\r\nu-2,t2,\r\n,t3,empty id\r\n',
    '\ufeffid,x\nu-1,1\n\nu-2,2',
    'name,id\n"multi\nline",u-9\nplain,u-10\n',
    'id,t\nu-1,a\nu-2\n',
    'id,t\n"unclosed,x\n',
    'id;t\nu-1;a\n',
    'x,y\n1,2\n',
]


def text_seeds(s):
    for d in JSON_DOCS:
        s.add("json", d)
    lines = [d for d in JSON_DOCS if d.lstrip().startswith("{") and '"user":{"id"' in d.replace(" ", "")]
    jsonl = "\n".join(lines) + "\n"
    s.add("jsonl", jsonl)
    s.add("jsonl", jsonl.replace("\n", "\r\n"))
    s.add("jsonl", "\n\n" + lines[0] + "\n   \n" + lines[1])
    s.add("jsonl", '{"user":{"id":null}}\n{"user":{"id":"a"}}\n{"user":{"id":"b"}}\n{"user":{"id":"a"}}\n')
    s.add("jsonl", gzip.compress(jsonl.encode(), mtime=0))
    s.add("jsonl", gzip.compress(b'{"user":{"id":"a"}}\n', mtime=0) + gzip.compress(b'{"user":{"id":"b"}}\n', mtime=0))
    for t in CSV_TEXTS:
        s.add("csv", t)
    s.add("csv", gzip.compress(CSV_TEXTS[0].encode(), mtime=0))
    s.add("csv", gzip.compress(CSV_TEXTS[1].encode(), mtime=0)[:-4])
    payloads = [jsonl.encode(), CSV_TEXTS[0].encode(), b"", b"x" * 3000, bytes(range(256))]
    for p in payloads:
        s.add("gzip", gzip.compress(p, mtime=0))
        s.add("gzip", zlib.compress(p))
    s.add("gzip", gzip.compress(b"first\n", mtime=0) + gzip.compress(b"second\n", mtime=0))
    s.add("gzip", gzip.compress(b"", mtime=0) + gzip.compress(b"after an empty member\n", mtime=0))
    s.add("gzip", gzip.compress(jsonl.encode(), mtime=0)[:20])


def small_tables():
    """A few small Arrow tables covering the physical types, nulls and nesting."""
    n = 40
    flat = pa.table({
        "user_id": pa.array([f"u-{i % 7}" if i % 9 else None for i in range(n)], pa.string()),
        "i32": pa.array(range(-20, n - 20), pa.int32()),
        "i64": pa.array([i * 2**33 for i in range(n)], pa.int64()),
        "f32": pa.array([i / 3 for i in range(n)], pa.float32()),
        "f64": pa.array([float("nan") if i == 5 else -0.0 if i == 6 else i * 1.5 for i in range(n)], pa.float64()),
        "flag": pa.array([i % 3 == 0 for i in range(n)], pa.bool_()),
        "bin": pa.array([bytes([i, i + 1]) for i in range(n)], pa.binary()),
        "fixed": pa.array([bytes([i] * 4) for i in range(n)], pa.binary(4)),
        "dec": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(9, 2)),
        "ts": pa.array([1700000000000000 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
        "day": pa.array([19000 + i for i in range(n)], pa.date32()),
    })
    nested = pa.table({
        "user_id": pa.array([f"u-{i % 5}" for i in range(12)], pa.string()),
        "tags": pa.array([[f"t{j}" for j in range(i % 3)] if i % 4 else None for i in range(12)], pa.list_(pa.string())),
        "point": pa.array([{"x": i, "y": None if i % 2 else float(i)} for i in range(12)],
                          pa.struct([("x", pa.int32()), ("y", pa.float64())])),
        "m": pa.array([[("k", i)] for i in range(12)], pa.map_(pa.string(), pa.int64())),
    })
    return flat, nested


def parquet_seeds(s, tmp):
    flat, nested = small_tables()
    files = []
    for codec in ["NONE", "SNAPPY", "GZIP", "ZSTD", "LZ4", "BROTLI"]:
        for version in ["1.0", "2.0"]:
            p = os.path.join(tmp, f"flat-{codec}-{version}.parquet")
            pq.write_table(flat, p, compression=codec, data_page_version=version, row_group_size=25,
                           write_page_index=True, write_statistics=True, data_page_size=256)
            files.append(p)
    encodings = {"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "user_id": "DELTA_BYTE_ARRAY",
                 "bin": "DELTA_LENGTH_BYTE_ARRAY", "f32": "BYTE_STREAM_SPLIT", "f64": "BYTE_STREAM_SPLIT",
                 "fixed": "BYTE_STREAM_SPLIT", "flag": "RLE"}
    for version in ["1.0", "2.0"]:
        p = os.path.join(tmp, f"encodings-{version}.parquet")
        pq.write_table(flat, p, use_dictionary=False, column_encoding=encodings, data_page_version=version,
                       compression="NONE")
        files.append(p)
    p = os.path.join(tmp, "nested.parquet")
    pq.write_table(nested, p, compression="NONE")
    files.append(p)
    p = os.path.join(tmp, "crc.parquet")
    pq.write_table(flat.slice(0, 10), p, write_page_checksum=True, compression="SNAPPY")
    files.append(p)
    p = os.path.join(tmp, "bloom.parquet")
    try:
        pq.write_table(flat.slice(0, 10), p, bloom_filter_options={"user_id": {"ndv": 10}}, compression="NONE")
        files.append(p)
    except TypeError:
        pass
    # The fixtures of Tests/ParquetTests.
    fx = os.path.join(tmp, "fixtures")
    r = subprocess.run([PY, os.path.join(ROOT, "scripts", "parquet_fixtures.py"), "generate", fx], capture_output=True)
    if r.returncode == 0:
        files += sorted(glob.glob(os.path.join(fx, "**", "*.parquet"), recursive=True))
    else:
        print(f"seeds: parquet_fixtures.py generate failed: {r.stderr.decode()[-300:]}", file=sys.stderr)
    for f in files:
        add_parquet(s, open(f, "rb").read())
    # Pages for the codec target: [codec][uncompressed size, 3 bytes LE][compressed bytes].
    raw = [b"", b"a", b"hello hello hello hello", bytes(range(256)) * 4, open(files[0], "rb").read()[:2000]]
    codec_ids = {"snappy": 1, "gzip": 2, "zstd": 6, "lz4_raw": 7}
    for name, cid in codec_ids.items():
        c = pa.Codec(name)
        for d in raw:
            s.add("codecs", bytes([cid]) + struct.pack("<I", len(d))[:3] + c.compress(d).to_pybytes())
    for d in raw:
        s.add("codecs", bytes([0]) + struct.pack("<I", len(d))[:3] + d)
    # Encodings: [encoding][type][width][count, 2 bytes LE][data], encoding and type as indexes
    # into Encoding.allCases and PhysicalType.allCases (Sources/Parquet/Metadata.swift).
    encodings = ["plain", "plain_dict", "rle", "bit_packed", "dbp", "dlba", "dba", "rle_dict", "bss"]
    types = ["boolean", "int32", "int64", "int96", "float", "double", "byte_array", "flba"]

    def e(encoding, typ, width, count, data):
        s.add("encodings", bytes([encodings.index(encoding), types.index(typ), width]) + struct.pack("<H", count) + data)

    e("plain", "int32", 0, 4, struct.pack("<4i", 1, -2, 3, 2**31 - 1))
    e("plain", "byte_array", 0, 2, struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0))
    e("plain", "flba", 3, 2, b"abcdef")
    e("plain", "boolean", 0, 10, b"\xa5\x02")
    e("rle_dict", "int32", 0, 8, b"\x02" + b"\x10\x03")
    e("rle", "boolean", 0, 8, struct.pack("<I", 2) + b"\x10\x01")
    e("dbp", "int64", 0, 5, b"\x80\x01\x04\x05\x02" + b"\x00" + b"\x00" * 4)
    e("dlba", "byte_array", 0, 2, b"\x80\x01\x04\x02\x06\x00\x00\x00\x00\x00" + b"abcdef")
    e("dba", "byte_array", 0, 2, b"\x80\x01\x04\x02\x00\x00\x00\x00\x00\x00" + b"\x80\x01\x04\x02\x06\x00\x00\x00\x00\x00" + b"abcdef")
    e("bss", "float", 0, 2, b"\x00\x01\x02\x03\x04\x05\x06\x07")
    e("bit_packed", "int32", 2, 8, b"\x05\x39\x77")


def add_parquet(s, data):
    s.add("parquet", data)
    if len(data) >= 12 and data[-4:] == b"PAR1":
        n = struct.unpack("<I", data[-8:-4])[0]
        if 0 < n <= len(data) - 8:
            s.add("thrift", data[-8 - n:-8])


def delta_seeds(s, tmp):
    d = os.path.join(tmp, "delta")
    os.makedirs(d)
    for args in (["delta_tables.py", "make", d], ["delta_tables.py", "make-features", d],
                 ["delta_dv.py", "make", d, "300,200,100"]):
        r = subprocess.run([PY, os.path.join(ROOT, "scripts", args[0])] + args[1:], capture_output=True)
        if r.returncode != 0:
            print(f"seeds: {' '.join(args)} failed: {r.stderr.decode()[-300:]}", file=sys.stderr)
    subprocess.run([PY, os.path.join(ROOT, "scripts", "delta_tables.py"), "checkpoint", os.path.join(d, "plain")], capture_output=True)
    spec = {"dvs": [{"f": 0, "rows": [1, 5], "ranges": [[10, 100], [200, 290, 3]], "storage": "u", "bin": "a", "prefix": "ab"},
                    {"f": 1, "rows": [0], "storage": "i"},
                    {"f": 2, "ranges": [[0, 50]], "storage": "u", "bin": "a", "prefix": "ab"}]}
    r = subprocess.run([PY, os.path.join(ROOT, "scripts", "delta_dv.py"), "delete", os.path.join(d, "dv"), json.dumps(spec)],
                       capture_output=True, text=True)
    if r.returncode == 0:
        for info in json.loads(r.stdout)["files"].values():
            desc = info["descriptor"]
            s.add("dv", b"\x03" + json.dumps(desc).encode())
            if desc["storageType"] == "u":
                blob = open(os.path.join(d, "dv", info["dvFile"]), "rb").read()
                s.add("dv", b"\x02" + struct.pack("<HHH", desc["offset"], desc["sizeInBytes"], desc["cardinality"]) + blob)
            else:
                s.add("dv", b"\x01" + desc["pathOrInlineDv"].encode())
    for spec in ({"rows": [0, 1, 2, 1000, 70000]}, {"ranges": [[0, 5000]]}, {"ranges": [[0, 100000, 2]]},
                 {"rows": [2**32 + 1, 2**33 + 7]}, {"rows": []}):
        r = subprocess.run([PY, os.path.join(ROOT, "scripts", "delta_dv.py"), "bitmap", json.dumps(spec)], capture_output=True, text=True)
        if r.returncode == 0:
            bm = bytes.fromhex(json.loads(r.stdout)["hex"])
            s.add("dv", b"\x00" + bm)
    add_delta_files(s, d)


def add_delta_files(s, d):
    for p in glob.glob(os.path.join(d, "**", "_delta_log", "*.json"), recursive=True):
        s.add("delta-log", open(p, "rb").read())
    for p in glob.glob(os.path.join(d, "**", "_delta_log", "*.checkpoint*.parquet"), recursive=True):
        s.add("checkpoint", open(p, "rb").read())
    for p in glob.glob(os.path.join(d, "**", "*.parquet"), recursive=True):
        if "_delta_log" not in p and os.path.getsize(p) <= MAX // 4:
            add_parquet(s, open(p, "rb").read())


def corpora_seeds(s, root):
    for p in glob.glob(os.path.join(root, "parquet-testing", "**", "*.parquet"), recursive=True):
        if os.path.getsize(p) <= MAX:
            add_parquet(s, open(p, "rb").read())
    for p in glob.glob(os.path.join(root, "parquet-testing", "data", "*.bin")):
        if os.path.getsize(p) <= MAX:
            s.add("parquet", open(p, "rb").read())
    for sub in ("delta-rs", "delta-io"):
        add_delta_files(s, os.path.join(root, sub))
        for p in glob.glob(os.path.join(root, sub, "**", "deletion_vector_*.bin"), recursive=True):
            if os.path.getsize(p) <= MAX:
                blob = open(p, "rb").read()
                if len(blob) >= 9:
                    size = struct.unpack(">I", blob[1:5])[0]
                    card = 0
                    s.add("dv", b"\x02" + struct.pack("<HHH", 1, size & 0xFFFF, card) + blob)
                    s.add("dv", b"\x00" + blob[5:5 + size])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--corpora", help="a local folder with parquet-testing/, delta-rs/, delta-io/")
    a = ap.parse_args()
    s = Seeds(a.out)
    text_seeds(s)
    tmp = tempfile.mkdtemp(prefix="lethe-seeds.")
    try:
        parquet_seeds(s, tmp)
        delta_seeds(s, tmp)
        if a.corpora and os.path.isdir(a.corpora):
            corpora_seeds(s, a.corpora)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(s.count, sort_keys=True))
    sys.stdout.flush()
    os._exit(0)


main()

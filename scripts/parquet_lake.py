#!/usr/bin/env python3
"""A small Parquet lake for the engine-level Parquet tests (Tests/LetheEngineTests/
ParquetLakeTests.swift) and scripts/e2e, and its oracle.

  parquet_lake.py write DIR SUBJECT   write DIR/lake (a Parquet dataset `events` with a
                                      string `user_id`, several files and row groups,
                                      snappy, zstd and an INT96 file, plus a CSV dataset
                                      `events_csv` derived from it), a copy in DIR/orig,
                                      and DIR/lethe.yaml; print JSON
                                      {"rows": {object: [rows of SUBJECT]}, "records": n,
                                       "objects": n, "removed": [objects that are all SUBJECT],
                                       "untouched": [objects without SUBJECT]}
  parquet_lake.py check DIR SUBJECT   check with pyarrow and DuckDB that every object of
                                      DIR/lake reads as its DIR/orig copy minus SUBJECT's
                                      rows (same order), with an identical Arrow schema
                                      (`pq.read_schema(...).to_string()`), the same Parquet
                                      physical/logical types and codecs, row groups that did
                                      not hold SUBJECT byte for byte; objects whose every row
                                      was SUBJECT's are gone; CSV rows byte for byte. Prints
                                      "ok" or exits 1 naming the problem.
"""
import csv
import datetime
import io
import json
import os
import random
import shutil
import sys

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

YAML = """\
lake: ./lake
state: ./.lethe
datasets:
  - name: events
    path: events
    format: parquet
    subject: user_id
    pii: [email]
  - name: events_csv
    path: events_csv
    format: csv
    subject: user_id
    derived_from: [events]
"""


def events(seed, rows, subject, share, nulls=0.0):
    """A table of `rows` events; about `share` of them belong to `subject`."""
    rnd = random.Random(seed)
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    users = []
    for _ in range(rows):
        r = rnd.random()
        if r < share:
            users.append(subject)
        elif r < share + nulls:
            users.append(None)
        else:
            users.append(f"u-{rnd.randint(0, 400):05d}")
    return pa.table({
        "user_id": pa.array(users, pa.string()),
        "ts": pa.array([base + datetime.timedelta(seconds=rnd.randint(0, 86400 * 30)) for _ in range(rows)],
                       pa.timestamp("ms", tz="UTC")),
        "seq": pa.array(range(seed * 100000, seed * 100000 + rows), pa.int64()),
        "amount": pa.array([None if rnd.random() < 0.1 else round(rnd.uniform(0, 500), 2) for _ in range(rows)],
                           pa.float64()),
        "qty": pa.array([rnd.randint(1, 9) for _ in range(rows)], pa.int32()),
        "country": pa.array([rnd.choice(["DE", "FR", "NL", "PL", "SE"]) for _ in range(rows)], pa.string()),
        "email": pa.array([f"{u}@example.org" if u else None for u in users], pa.string()),
        "flag": pa.array([rnd.random() < 0.3 for _ in range(rows)], pa.bool_()),
    })


def place_subject(t, subject, row_groups_with, row_group_size):
    """Keeps `subject` only in the given row groups (others get a replacement user)."""
    users = t.column("user_id").to_pylist()
    for i, u in enumerate(users):
        if u == subject and (i // row_group_size) not in row_groups_with:
            users[i] = f"u-{(i * 7) % 400:05d}"
    emails = [f"{u}@example.org" if u else None for u in users]
    t = t.set_column(t.schema.get_field_index("user_id"), "user_id", pa.array(users, pa.string()))
    return t.set_column(t.schema.get_field_index("email"), "email", pa.array(emails, pa.string()))


def write(d, subject):
    lake = os.path.join(d, "lake")
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(lake, "events", "day=01"))
    os.makedirs(os.path.join(lake, "events", "day=02"))
    os.makedirs(os.path.join(lake, "events_csv"))
    files = {}
    # snappy, 4 row groups, the subject in row groups 1 and 3 only
    t = place_subject(events(1, 2000, subject, 0.02, nulls=0.01), subject, {1, 3}, 500)
    pq.write_table(t, os.path.join(lake, "events/day=01/part-0.snappy.parquet"), row_group_size=500,
                   compression="snappy")
    files["events/day=01/part-0.snappy.parquet"] = t
    # zstd, 5 row groups, v2 data pages, the subject everywhere
    t = events(2, 1500, subject, 0.05)
    pq.write_table(t, os.path.join(lake, "events/day=01/part-1.zstd.parquet"), row_group_size=300,
                   compression="zstd", data_page_version="2.0")
    files["events/day=01/part-1.zstd.parquet"] = t
    # INT96 timestamps, gzip, no dictionary for user_id, page index; the subject in one row group
    t = place_subject(events(3, 900, subject, 0.03), subject, {2}, 300)
    pq.write_table(t, os.path.join(lake, "events/day=02/part-2.int96.parquet"), row_group_size=300,
                   compression="gzip", use_deprecated_int96_timestamps=True,
                   use_dictionary=["country"], write_page_index=True)
    files["events/day=02/part-2.int96.parquet"] = t
    # no row of the subject: must stay byte for byte
    t = place_subject(events(4, 800, subject, 0.0), subject, set(), 200)
    pq.write_table(t, os.path.join(lake, "events/day=02/part-3.none.parquet"), row_group_size=200,
                   compression="zstd")
    files["events/day=02/part-3.none.parquet"] = t
    # every row the subject's (two row groups): the object must be removed
    t = events(5, 120, subject, 1.0)
    pq.write_table(t, os.path.join(lake, "events/day=02/part-4.only.parquet"), row_group_size=60,
                   compression="snappy")
    files["events/day=02/part-4.only.parquet"] = t

    # The derived CSV dataset: every event, a few columns, written by pyarrow (quoted strings).
    all_events = pa.concat_tables(list(files.values()))
    derived = all_events.select(["user_id", "seq", "amount", "country"])
    buf = io.BytesIO()
    pacsv.write_csv(derived, buf)
    csv_key = "events_csv/events.csv"
    with open(os.path.join(lake, csv_key), "wb") as f:
        f.write(buf.getvalue())

    with open(os.path.join(d, "lethe.yaml"), "w") as f:
        f.write(YAML)
    shutil.copytree(lake, os.path.join(d, "orig"))

    rows = {}
    for key, t in files.items():
        hits = [i for i, u in enumerate(t.column("user_id").to_pylist()) if u == subject]
        if hits:
            rows[key] = hits
    csv_rows = [i for i, r in enumerate(csv_records(os.path.join(lake, csv_key))[1]) if r[0] == subject]
    rows[csv_key] = csv_rows
    removed = [k for k, t in files.items() if all(u == subject for u in t.column("user_id").to_pylist())]
    print(json.dumps({
        "rows": rows,
        "records": sum(t.num_rows for t in files.values()) + derived.num_rows,
        "objects": len(files) + 1,
        "removed": removed,
        "untouched": [k for k in files if k not in rows],
    }, sort_keys=True))


def csv_records(path):
    """(header, records, raw record texts) of a CSV file."""
    with open(path, newline="") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)   # pyarrow writes no newline inside a field here
    parsed = list(csv.reader(lines))
    return parsed[0], parsed[1:], lines


def chunk_bytes(path, md, rg):
    """The bytes of every column chunk of row group `rg`."""
    out = []
    with open(path, "rb") as f:
        g = md.row_group(rg)
        for c in range(g.num_columns):
            cm = g.column(c)
            start = cm.data_page_offset
            if cm.has_dictionary_page and cm.dictionary_page_offset is not None and cm.dictionary_page_offset > 0:
                start = min(start, cm.dictionary_page_offset)
            f.seek(start)
            out.append(f.read(cm.total_compressed_size))
    return out


def physical(pf):
    """Each leaf column's path, physical, logical and converted type, and levels."""
    s = pf.schema
    return [(c.path, c.physical_type, c.logical_type.to_json(), c.converted_type, c.max_definition_level,
             c.max_repetition_level) for c in (s.column(i) for i in range(len(s)))]


def check(d, subject):
    lake, orig = os.path.join(d, "lake"), os.path.join(d, "orig")
    problems = []
    con = duckdb.connect()
    checked = 0
    for root, _, names in os.walk(orig):
        for name in sorted(names):
            o = os.path.join(root, name)
            key = os.path.relpath(o, orig)
            n = os.path.join(lake, key)
            if key.endswith(".csv"):
                header, recs, lines = csv_records(o)
                keep = [lines[0]] + [lines[i + 1] for i, r in enumerate(recs) if r[0] != subject]
                if not os.path.exists(n):
                    problems.append(f"{key}: missing")
                    continue
                with open(n, newline="") as f:
                    got = f.read()
                if got != "".join(keep):
                    problems.append(f"{key}: CSV is not the original minus {subject}'s rows, byte for byte")
                checked += 1
                continue
            a = pq.read_table(o)
            users = a.column("user_id").to_pylist()
            kept_idx = [i for i, u in enumerate(users) if u != subject]
            if not kept_idx:
                if os.path.exists(n):
                    problems.append(f"{key}: every row was {subject}'s but the object still exists")
                checked += 1
                continue
            if not os.path.exists(n):
                problems.append(f"{key}: removed but {len(kept_idx)} rows of others were in it")
                continue
            b = pq.read_table(n)
            expected = a.take(pa.array(kept_idx, pa.int64()))
            if not b.equals(expected):
                problems.append(f"{key}: pyarrow reads {b.num_rows} rows, not the original minus {subject}'s "
                                f"({expected.num_rows} rows)")
            if pq.read_schema(o).to_string() != pq.read_schema(n).to_string():
                problems.append(f"{key}: Arrow schema changed:\n{pq.read_schema(n)}\nwas\n{pq.read_schema(o)}")
            po, pn = pq.ParquetFile(o), pq.ParquetFile(n)
            if physical(po) != physical(pn):
                problems.append(f"{key}: Parquet column types changed: {physical(pn)}, were {physical(po)}")
            mo, mn = po.metadata, pn.metadata
            codecs_o = {mo.row_group(0).column(c).compression for c in range(mo.num_columns)}
            codecs_n = {mn.row_group(g).column(c).compression for g in range(mn.num_row_groups) for c in range(mn.num_columns)}
            if codecs_o != codecs_n:
                problems.append(f"{key}: codecs {codecs_n}, were {codecs_o}")
            # Row groups without the subject are copied byte for byte, in order.
            first, clean_groups = 0, []
            for g in range(mo.num_row_groups):
                rows = mo.row_group(g).num_rows
                if subject not in users[first:first + rows]:
                    clean_groups.append(g)
                first += rows
            new_groups = [chunk_bytes(n, mn, g) for g in range(mn.num_row_groups)]
            for g in clean_groups:
                if chunk_bytes(o, mo, g) not in new_groups:
                    problems.append(f"{key}: row group {g} held no row of {subject} but was not copied byte for byte")
            if pn.metadata.num_rows != len(kept_idx):
                problems.append(f"{key}: footer says {pn.metadata.num_rows} rows, expected {len(kept_idx)}")
            # DuckDB: the same rows, same order, and none of the subject's.
            got = con.sql("select * from read_parquet($1)", params=[n]).to_arrow_table()
            want = con.sql("select * from read_parquet($1) where user_id is distinct from $2",
                           params=[o, subject]).to_arrow_table()
            if not got.equals(want):
                problems.append(f"{key}: DuckDB reads {got.num_rows} rows, not the original minus {subject}'s "
                                f"({want.num_rows} rows)")
            checked += 1
    left = con.sql("select count(*) from read_parquet($1) where user_id = $2",
                   params=[os.path.join(lake, "events", "**", "*.parquet"), subject]).fetchall()[0][0]
    if left:
        problems.append(f"DuckDB finds {left} rows of {subject} left in the events dataset")
    if checked == 0:
        problems.append("no object checked")
    if problems:
        sys.exit("parquet_lake.py check: " + "\n".join(problems))
    print("ok")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()

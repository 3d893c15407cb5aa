#!/usr/bin/env python3
"""Peer files and oracles for the masking tests (issue 15), written and read by pyarrow, DuckDB
and delta-rs, never by Lethe.

  mask_peers.py write-parquet DIR     DIR/pa/a.parquet (pyarrow: 3 row groups, dictionary, snappy)
                                      and DIR/duck/b.parquet (DuckDB COPY … TO parquet)
  mask_peers.py read-parquet FILE     {"rows": [...], "schema": str, "row_groups": n, "duckdb": [...]}:
                                      the rows as pyarrow reads them (and DuckDB), the Arrow schema
                                      with the Parquet physical types
  mask_peers.py write-delta DIR [cdf] a delta-rs table (two commits), with the change data feed on if `cdf`
  mask_peers.py read-delta DIR [V]    {"rows": [...], "version": v, "operations": {version: operation},
                                      "cdf": [...] (the change feed from version V on, when asked)}
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

USERS = ["u-1", "u-2", "u-3", "u-1", "u-4", "u-1", "u-2", "u-5", "u-6", "u-1"]


def rows():
    out = []
    for i, u in enumerate(USERS):
        out.append({
            "user_id": u,
            "email": f"{u}-{i}@example.org",
            "ip": f"10.0.0.{i}",
            "age": 20 + i,
            "n": i,
        })
    return out


def table():
    r = rows()
    return pa.table({
        "user_id": pa.array([x["user_id"] for x in r], pa.string()),
        "email": pa.array([x["email"] for x in r], pa.string()),
        "ip": pa.array([x["ip"] for x in r], pa.string()),
        "age": pa.array([x["age"] for x in r], pa.int64()),
        "n": pa.array([x["n"] for x in r], pa.int32()),
    })


def physical_schema(path):
    md = pq.ParquetFile(path).metadata
    s = md.schema
    return [f"{s.column(i).path}:{s.column(i).physical_type}:{s.column(i).max_definition_level}" for i in range(len(s))]


def write_parquet(d):
    os.makedirs(f"{d}/pa", exist_ok=True)
    os.makedirs(f"{d}/duck", exist_ok=True)
    pq.write_table(table(), f"{d}/pa/a.parquet", row_group_size=4, compression="snappy", use_dictionary=True)
    import duckdb
    con = duckdb.connect()
    con.register("t", table())
    con.execute(f"COPY (SELECT * FROM t) TO '{d}/duck/b.parquet' (FORMAT parquet)")
    con.close()


def py(v):
    return v


def read_parquet(path):
    t = pq.read_table(path)
    out = {"rows": t.to_pylist(), "schema": physical_schema(path), "row_groups": pq.ParquetFile(path).metadata.num_row_groups}
    import duckdb
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{path}')")
    names = [c[0] for c in cur.description]
    out["duckdb"] = [dict(zip(names, r)) for r in cur.fetchall()]
    con.close()
    return out


def write_delta(d, cdf):
    from deltalake import write_deltalake
    t = table()
    config = {"delta.enableChangeDataFeed": "true"} if cdf else None
    write_deltalake(d, t.slice(0, 6), configuration=config)
    write_deltalake(d, t.slice(6), mode="append")


def read_delta(d, cdf_from=None):
    from deltalake import DeltaTable
    dt = DeltaTable(d)
    out = {"rows": sorted(dt.to_pyarrow_table().to_pylist(), key=lambda r: (r["n"] is None, r["n"] or 0)), "version": dt.version(),
           "operations": {str(h["version"]): h.get("operation") for h in dt.history()}}
    if cdf_from is not None:
        cdf = pa.table(dt.load_cdf(starting_version=cdf_from).read_all()).to_pylist()
        out["cdf"] = sorted(({k: v for k, v in r.items() if k != "_commit_timestamp"} for r in cdf),
                            key=lambda r: (r["_change_type"], r["n"] is None, r["n"] or 0))
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "write-parquet":
        write_parquet(sys.argv[2])
    elif cmd == "read-parquet":
        print(json.dumps(read_parquet(sys.argv[2]), default=str))
    elif cmd == "write-delta":
        write_delta(sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "cdf")
    elif cmd == "read-delta":
        print(json.dumps(read_delta(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None), default=str))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
    # delta-rs's background threads can abort the interpreter's teardown under load ("terminate called
    # without an active exception", exit 6) after the work is done: skip the teardown, as delta_tables.py does.
    import os
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

#!/usr/bin/env python3
"""Runs every Parquet file of a corpus (e.g. Apache parquet-testing) through Lethe's CLI:
index -> locate -> forget -> approve -> run -> verify, with a subject taken from one of
the file's columns, then checks the result with pyarrow. Local use (scripts/corpus-parquet).

  parquet_corpus.py LETHE_BIN CORPUS_DIR WORK_DIR [--markdown FILE] [--only NAME...]

For each `*.parquet` under CORPUS_DIR that pyarrow can read:
  * the subject column is the first flat (non-repeated) leaf column, in the order string,
    integer, date/time/timestamp, decimal, UUID, other, whose values' canonical text is
    printable UTF-8 (computed here, independently of Lethe, by parquet_fixtures.py's oracle
    from the logical values pyarrow reads); the subject is its least frequent value; files
    with only floating-point or binary columns are tried on a nested column instead;
  * the file is copied into a fresh lake (one `parquet` dataset, with an empty file of the same
    schema beside it so that a file deleted whole does not leave the dataset empty); Lethe indexes it, locates
    the subject (the rows must be the oracle's), files, approves and runs the request, and
    verifies it;
  * pyarrow reads the result: every other row kept in order, the subject's rows gone (a file
    left without rows must be deleted).
A refusal (exit 2, `unsupported`) is an outcome, reported with its reason.
Prints one JSON line per file and a summary; --markdown writes the table for docs/parquet.md.
"""
import json
import os
import struct
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parquet_fixtures  # noqa: E402  (the canonical-text oracle)


def lethe(bin_, cfg, command, *args):
    p = subprocess.run([bin_, command, "--config", cfg, "--json", *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def choose(path):
    """(column dotted path, subject text, subject rows, repeated) or a reason string."""
    out = path + ".oracle.json"
    try:
        parquet_fixtures.dump(path, out)
    except Exception as e:  # noqa: BLE001
        return f"oracle cannot read it: {type(e).__name__}: {e}"[:160]
    d = json.load(open(out))
    os.remove(out)
    pf = pq.ParquetFile(path)
    schema = pf.schema
    rank = {"BYTE_ARRAY": 0, "INT32": 1, "INT64": 1, "FIXED_LEN_BYTE_ARRAY": 3, "INT96": 2, "BOOLEAN": 5}

    def text_of(h):
        if h is None:
            return None
        if h[:4] in ("f64:", "f32:", "f16:"):
            # Swift's shortest round-trip text; numpy's shortest repr per precision agrees on
            # ordinary magnitudes (both switch to exponents outside them, differently).
            import numpy as np
            kind = {"f64:": (">d", np.float64), "f32:": (">f", np.float32), "f16:": (">e", np.float16)}[h[:4]]
            x = kind[1](struct.unpack(kind[0], bytes.fromhex(h[4:]))[0])
            if not (x == x) or not (1e-4 <= abs(float(x)) < 1e6):
                return None
            t = str(x)
            return t if "e" not in t else None
        if h.startswith("f"):
            return None
        try:
            t = bytes.fromhex(h).decode("utf-8")
        except UnicodeDecodeError:
            return "hex:" + h if h else None   # binary: typed with --hex
        if not t or not t.isprintable() or "|" in t or t.strip() != t or t.startswith("hex:"):
            return "hex:" + h if h else None
        return t

    candidates = []
    for i, c in enumerate(d["columns"]):
        col = schema.column(i)
        repeated = col.max_repetition_level > 0
        rows = c["canonical"]
        values = {}
        ok = True
        for r, v in enumerate(rows):
            if repeated:
                items = set(x for x in (flatten(v) or []) if x is not None)
                if len(items) > 1:
                    values.setdefault(None, []).append(r)   # several subjects in one row
                    continue
                v = next(iter(items)) if items else None
            if v is None:
                continue
            t = text_of(v)
            if t is None or t in os.path.basename(path):   # a file name holding the id is residue of its own
                values.setdefault(None, [])
                continue
            values.setdefault(t, []).append(r)
        if not ok:
            continue
        typed = {k: v for k, v in values.items() if k is not None}
        if not typed:
            continue
        subject = min(typed, key=lambda k: (len(typed[k]), k))
        lt = str(col.logical_type)
        order = rank.get(col.physical_type, 4)
        if subject.startswith("hex:"):
            order = 8
        if "Date" in lt or "Timestamp" in lt or "Time" in lt:
            order = 2
        if "Decimal" in lt:
            order = 2.5
        if col.physical_type == "BOOLEAN":
            order = 6
        if col.physical_type == "DOUBLE":
            order = 7
        candidates.append((1 if repeated else 0, order, i, c["path"], subject, typed[subject], repeated, None in values))
    if not candidates:
        # A list whose rows hold several values: Lethe must refuse it by name at index time.
        for i, c in enumerate(d["columns"]):
            if schema.column(i).max_repetition_level > 0 and any(len(set(x for x in (flatten(v) or []) if x is not None)) > 1 for v in c["canonical"]):
                return c["path"], "-", [], True, True
        flat = [c["path"] for i, c in enumerate(d["columns"]) if schema.column(i).max_repetition_level == 0]
        return ("no column whose values can be typed as text (only floating point, binary or null values)", flat[0] if flat else None)
    _, _, _, path_, subject, rows, repeated, shared = sorted(candidates)[0]
    return path_, subject, rows, repeated, shared


def flatten(v):
    if v is None:
        return None
    if isinstance(v, list):
        out = []
        for x in v:
            f = flatten(x)
            if isinstance(f, list):
                out.extend(f)
            elif f is not None:
                out.append(f)
        return out
    return [v]


def yaml_field(dotted):
    return json.dumps(dotted)


def run_one(bin_, src, work, name):
    res = {"file": name}
    try:
        table = pq.read_table(src)
    except Exception as e:  # noqa: BLE001
        res.update(outcome="skipped", reason=f"pyarrow cannot read it: {e}"[:200])
        return res
    res["rows"] = table.num_rows
    picked = choose(src)
    if isinstance(picked, str) or picked[1] is None:
        res.update(outcome="skipped", reason=picked if isinstance(picked, str) else picked[0])
        return res
    if len(picked) == 2:   # nothing to erase: index it with its first column (it must read cleanly)
        root = os.path.join(work, name.replace("/", "_"))
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root + "/lake/ds")
        shutil.copyfile(src, root + "/lake/ds/" + os.path.basename(src))
        cfg = root + "/lethe.yaml"
        with open(cfg, "w") as f:
            f.write(f"lake: ./lake\nstate: ./state\ndatasets:\n  - name: ds\n    path: ds\n    format: parquet\n    subject: {yaml_field(picked[1])}\n")
        code, out, err = lethe(bin_, cfg, "index")
        q = json.loads(out)["quarantined"] if code == 0 else None
        res["column"] = picked[1]
        if code == 0 and not q:
            res.update(outcome="indexed, nothing to erase", reason=picked[0])
        else:
            res.update(outcome="quarantined", reason=(q[0]["issue"] if q else (err or out)).split(": ", 1)[-1][:300])
        return res
    column, subject, subject_rows, repeated, shared = picked
    res.update(column=column, subject=subject, subject_rows=len(subject_rows), repeated=repeated)
    root = os.path.join(work, name.replace("/", "_"))
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root + "/lake/ds")
    dst = root + "/lake/ds/" + os.path.basename(src)
    shutil.copyfile(src, dst)
    # A file of the same schema and no rows beside it: when every row is the subject's and the
    # file is deleted, the dataset is not left empty (the verifier refuses to call an empty
    # dataset clean: nothing left to examine).
    empty = root + "/lake/ds/zz-empty.parquet"
    try:
        pq.write_table(table.slice(0, 0), empty)
        paths = lambda f: [c.path for c in pq.ParquetFile(f).schema]   # noqa: E731
        res["bystander"] = paths(empty) == paths(src)   # pyarrow rewrites legacy list layouts
    except Exception:  # noqa: BLE001
        res["bystander"] = False
    if not res["bystander"] and os.path.exists(empty):
        os.remove(empty)
    cfg = root + "/lethe.yaml"
    with open(cfg, "w") as f:
        f.write(f"lake: ./lake\nstate: ./state\ndatasets:\n  - name: ds\n    path: ds\n    format: parquet\n    subject: {yaml_field(column)}\n")
    code, out, err = lethe(bin_, cfg, "index")
    if code != 0:
        res.update(outcome="index failed", reason=(err or out).strip()[:300])
        return res
    idx = json.loads(out)
    if idx["quarantined"]:
        issue = idx["quarantined"][0]["issue"]   # the corpus file (the empty bystander has the same schema)
        res.update(outcome="refused at index" if "[unsupported]" in issue or "unsupported" in issue else "quarantined",
                   reason=issue.split(": ", 1)[-1][:300])
        if repeated and shared:
            res["expected"] = "refusal: a row holds several subjects"
        return res
    typed = ["--hex", subject[4:]] if subject.startswith("hex:") else ["--", subject]
    code, out, err = lethe(bin_, cfg, "locate", *typed)
    located = sum(o["rows"] for o in json.loads(out)) if code == 0 and out.strip() else -1
    res["located"] = located
    code, out, err = lethe(bin_, cfg, "forget", "--by", "alice", *typed)
    if code != 0:
        res.update(outcome="refused at forget" if code == 2 else "forget failed", reason=(err or out).strip()[:300])
        return res
    rid = json.loads(out.splitlines()[0])["id"]
    code, out, err = lethe(bin_, cfg, "approve", rid, "--by", "bob")
    if code != 0:
        res.update(outcome="approve failed", reason=(err or out).strip()[:300])
        return res
    code, out, err = lethe(bin_, cfg, "run")
    code, out, err = lethe(bin_, cfg, "verify", rid)
    verdict = None
    for line in out.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if v.get("id") == rid:
            verdict = v
    res["verified"] = bool(verdict and verdict.get("clean"))
    if verdict and not verdict.get("clean"):
        res["verify"] = json.dumps({k: verdict.get(k) for k in ("found", "unreadable", "state_hits", "log_hits", "objects_scanned")})[:300]
    # pyarrow: the other rows, in order; the subject's gone.
    keep = [r for r in range(table.num_rows) if r not in set(subject_rows)]
    expected = table.take(pa.array(keep, pa.int64()))
    if os.path.exists(dst):
        try:
            got = pq.read_table(dst)
            # repr makes NaN equal to NaN (Table.equals does not).
            res["pyarrow_ok"] = got.num_rows == len(keep) and (got.equals(expected) or repr(got.to_pylist()) == repr(expected.to_pylist()))
            if not res["pyarrow_ok"]:
                res["pyarrow"] = f"reads {got.num_rows} rows, expected {len(keep)}"
        except Exception as e:  # noqa: BLE001
            res["pyarrow_ok"] = False
            res["pyarrow"] = f"cannot read the result: {e}"[:200]
    else:
        res["pyarrow_ok"] = not keep
        res["deleted"] = True
    ok = located == len(subject_rows) and res["verified"] and res["pyarrow_ok"]
    res["outcome"] = "erased and verified" if ok else "FAILED"
    if not ok and located == len(subject_rows) and res["pyarrow_ok"] and res.get("deleted") and verdict \
            and verdict.get("objects_scanned") == 0 and not verdict.get("found") and not verdict.get("unreadable"):
        # Every row was the subject's: the file is deleted and the dataset left empty; the verifier
        # refuses to call that clean (nothing left to examine), which is its rule, not residue.
        res["outcome"] = "erased, dataset left empty (not verified: nothing to examine)"
    return res


def main():
    args = sys.argv[1:]
    md = None
    only = []
    if "--markdown" in args:
        i = args.index("--markdown")
        md = args[i + 1]
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1:]
        args = args[:i]
    bin_, corpus, work = args
    files = []
    for dirpath, _, names in os.walk(corpus):
        for n in names:
            if n.endswith(".parquet"):
                files.append(os.path.join(dirpath, n))
    files.sort()
    results = []
    for f in files:
        name = os.path.relpath(f, corpus)
        if only and not any(o in name for o in only):
            continue
        r = run_one(bin_, f, work, name)
        results.append(r)
        print(json.dumps(r), flush=True)
    counts = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(json.dumps({"summary": counts, "files": len(results)}))
    if md:
        with open(md, "w") as f:
            f.write(f"{len(results)} files: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) + ".\n\n")
            f.write("| file | subject column | rows (subject's) | outcome | note |\n|---|---|---|---|---|\n")
            # Files of one folder with the same outcome and no note collapse into one line.
            groups = {}
            for r in results:
                folder = r["file"].split("/")[0]
                if folder not in ("data", "bad_data") and r["outcome"] == "erased and verified":
                    groups.setdefault(folder, []).append(r)
            for folder, rs in groups.items():
                cols = sorted(set(r.get("column", "") for r in rs))
                f.write(f"| {folder}/*.parquet ({len(rs)} files) | {', '.join(cols)} | {sum(r.get('rows', 0) for r in rs)} | erased and verified | "
                        f"{sum(1 for r in rs if r.get('deleted'))} deleted whole (every row the subject's); {sum(1 for r in rs if r.get('subject', '').startswith('hex:'))} binary subjects typed with --hex |\n")
            for r in results:
                folder = r["file"].split("/")[0]
                if folder in groups and r in groups[folder]:
                    continue
                note = r.get("reason") or r.get("verify") or r.get("pyarrow") or ("file deleted: every row was the subject's" if r.get("deleted") else "")
                col = r.get("column", "")
                if r.get("repeated"):
                    col += " (in a list)"
                rows = f"{r.get('rows', '')} ({r.get('subject_rows', '')})" if "subject_rows" in r else str(r.get("rows", ""))
                f.write(f"| {r['file']} | {col} | {rows} | {r['outcome']} | {note.replace('|', '/')} |\n")
    sys.exit(1 if counts.get("FAILED") else 0)


if __name__ == "__main__":
    main()

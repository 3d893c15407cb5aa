"""The Python peer of `lethe-bench index|erase` (Benchmarks/IndexBench): json.loads per line over
the objects named on the command line, single process; prints records, bytes, seconds, found."""
import json, sys, time
t = time.perf_counter(); n = 0; b = 0; found = 0
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        for line in f:
            b += len(line)
            if line.strip():
                d = json.loads(line)
                if d.get("user", {}).get("id") is not None: found += 1
                n += 1
print(json.dumps({"records": n, "bytes": b, "seconds": time.perf_counter() - t, "found": found}))

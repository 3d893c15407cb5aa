"""The Python peer of `lethe-bench stream`: json.loads per event and a set of the forgotten
raw ids (argv[1], one a line); events on stdin, kept events on stdout."""
import json, sys
ids = set(open(sys.argv[1], encoding="utf-8").read().split("\n"))
ids.discard("")
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    e = json.loads(line)
    u = e.get("user")
    s = u.get("id") if isinstance(u, dict) else None
    if isinstance(s, bool) or s is None or s == "":
        out.write(line); continue
    if str(s) not in ids:
        out.write(line)

import Foundation
import LetheCore
import LetheStorage
import LetheFormats

/// Builds the quickstart's sample lake: raw JSON Lines events (some gzipped), a
/// bronze CSV of users and silver CSV sessions derived from them, and a gold daily
/// aggregate with no subject column, rebuilt by a small Python job.
public struct SampleLake {
    public var days = 20
    public var filesPerDay = 5
    public var eventsPerFile = 1_000
    public var users = 12_000
    public var seed: UInt64 = 42

    public init() {}

    public static func userID(_ n: Int) -> String { "u-" + String(format: "%05d", n) }

    /// The config text for a lake at `lake/` beside it.
    public static let config = """
        # Lethe quickstart lake (generated). See README.md for every key.
        lake: ./lake
        state: ./.lethe
        datasets:
          - name: raw_events
            path: raw/events
            format: jsonl
            subject: user.id
            pii: [user.email, ip]
          - name: bronze_users
            path: bronze/users
            format: csv
            subject: user_id
            pii: [email]
            derived_from: [raw_events]
          - name: silver_sessions
            path: silver/sessions
            format: csv
            subject: user_id
            derived_from: [raw_events]
          - name: gold_daily
            path: gold/daily
            format: csv
            derived_from: [silver_sessions]
            rebuild: "python3 jobs/daily.py"

        """

    /// The gold rebuild job: daily active users and events from the silver sessions.
    public static let dailyJob = """
        # Rebuilds gold/daily/daily.csv from silver/sessions/*.csv (run by `lethe run` after erasure).
        import csv, glob, os, tempfile
        lake = os.environ.get("LETHE_LAKE") or os.path.join(os.path.dirname(__file__), "..", "lake")
        days = {}
        for path in sorted(glob.glob(os.path.join(lake, "silver", "sessions", "*.csv"))):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    d = days.setdefault(row["day"], [0, 0])
                    d[0] += 1
                    d[1] += int(row["events"])
        out_dir = os.path.join(lake, "gold", "daily")
        os.makedirs(out_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".daily.csv.lethe-tmp-")
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\\n")
            w.writerow(["day", "active_users", "events"])
            for day in sorted(days):
                w.writerow([day, days[day][0], days[day][1]])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(out_dir, "daily.csv"))
        print("gold/daily: %d days" % len(days))

        """

    /// Writes the lake under `dir/lake`, `dir/lethe.yaml` and `dir/jobs/daily.py`. Returns the number of events.
    public func build(in dir: String) async throws -> (events: Int, users: Int, objects: Int) {
        let store = LocalObjectStore(root: dir + "/lake")
        try LocalObjectStore.makeDirs(dir + "/lake")
        try LocalObjectStore.makeDirs(dir + "/jobs")
        try Self.config.write(toFile: dir + "/lethe.yaml", atomically: true, encoding: .utf8)
        try Self.dailyJob.write(toFile: dir + "/jobs/daily.py", atomically: true, encoding: .utf8)
        var rng = SplitMix64(seed: seed)  // deterministic: every quickstart lake is the same
        let kinds = ["page_view", "click", "add_to_cart", "purchase", "search"]
        var objects = 0, events = 0
        var seen = Set<Int>()
        // sessions[day][user] = (events, first, last)
        var daily: [[Int: (Int, String, String)]] = Array(repeating: [:], count: days)
        for day in 0..<days {
            let date = String(format: "2026-11-%02d", day + 1)
            for part in 0..<filesPerDay {
                var lines = ""
                lines.reserveCapacity(eventsPerFile * 240)
                for i in 0..<eventsPerFile {
                    // Skewed: a few users are very active, most are not.
                    let u = Int(rng.next() % UInt64(users)) / (rng.next() % 4 == 0 ? 8 : 1)
                    seen.insert(u)
                    let secs = (part * eventsPerFile + i) * 86_400 / (filesPerDay * eventsPerFile)
                    let ts = String(format: "%@T%02d:%02d:%02dZ", date, secs / 3600, secs / 60 % 60, secs % 60)
                    let id = Self.userID(u)
                    let kind = kinds[Int(rng.next() % UInt64(kinds.count))]
                    let item = rng.next() % 5_000
                    let ip = "10.\(rng.next() % 256).\(rng.next() % 256).\(u % 256)"
                    lines +=
                        #"{"ts":"\#(ts)","event":"\#(kind)","user":{"id":"\#(id)","email":"\#(id.replacingOccurrences(of: "-", with: ""))@example.com"},"item":{"id":"i-\#(item)","price":\#(item % 200).99},"ip":"\#(ip)","props":{"path":"/p/\#(item)","ms":\#(rng.next() % 900)}}"#
                    lines += "\n"
                    var s = daily[day][u] ?? (0, ts, ts)
                    s.0 += 1
                    s.2 = ts
                    daily[day][u] = s
                    events += 1
                }
                let ext = part % 2 == 0 ? "jsonl.gz" : "jsonl"
                try await EncodedObject.write(Array(lines.utf8), to: "raw/events/\(date)/part-\(part).\(ext)", in: store)
                objects += 1
            }
            var csv = "user_id,day,events,first_seen,last_seen\r\n"
            for u in daily[day].keys.sorted() {
                let s = daily[day][u]!
                csv += "\(Self.userID(u)),\(date),\(s.0),\(s.1),\(s.2)\r\n"
            }
            try await EncodedObject.write(Array(csv.utf8), to: "silver/sessions/\(date).csv", in: store)
            objects += 1
        }
        let countries = ["DE", "FR", "NL", "SE", "PL", "ES", "IT", "IE"]
        for shard in 0..<4 {
            var csv = "user_id,email,country,note\n"
            for u in seen.sorted() where u % 4 == shard {
                let id = Self.userID(u)
                let note = u % 97 == 0 ? "\"prefers \"\"quiet\"\" mode, two, commas\"" : ""
                csv += "\(id),\(id.replacingOccurrences(of: "-", with: ""))@example.com,\(countries[u % countries.count]),\(note)\n"
            }
            try await EncodedObject.write(Array(csv.utf8), to: "bronze/users/shard-\(shard).csv\(shard == 3 ? ".gz" : "")", in: store)
            objects += 1
        }
        var gold = "day,active_users,events\n"
        for day in 0..<days {
            gold += String(format: "2026-11-%02d", day + 1) + ",\(daily[day].count),\(daily[day].values.reduce(0) { $0 + $1.0 })\n"
        }
        try await EncodedObject.write(Array(gold.utf8), to: "gold/daily/daily.csv", in: store)
        objects += 1
        return (events, seen.count, objects)
    }
}

import LetheCore

/// What `lethe sweep` found and did: one pass over every object of the lake (or one dataset), the Delta
/// logs, object keys, hidden files and Lethe's own state, for the raw ids of verified requests not swept yet.
/// Never holds a raw id: requests by id and subject key, findings by dataset, object and kind.
public struct SweepReport: Sendable, Equatable {
    /// One place a request's subject was found (or an object the sweep could not read).
    public struct Found: Sendable, Equatable, Codable {
        public var dataset: String
        public var object: String
        /// `record` (the subject's own record: the index missed it), `mention` (the raw id inside another
        /// record, e.g. `ref.user.id`: reported, not failing), `key` (an object key names it), `hidden`
        /// (a hidden file holds it), `log` (a Delta log file holds it), `state` (Lethe's own state holds it),
        /// `unreadable` (the object could not be read: nothing is proven).
        public var kind: String
        public var rows: Int64
        public var issue: String?

        public init(dataset: String, object: String, kind: String, rows: Int64 = 0, issue: String? = nil) {
            self.dataset = dataset
            self.object = object
            self.kind = kind
            self.rows = rows
            self.issue = issue
        }
    }

    /// One request's result.
    public struct RequestResult: Sendable, Equatable, Codable {
        public var id: String
        public var subjectKey: String
        /// `swept` (nothing but mentions: marked swept, raw id destroyed), `residue` (failed again: the next
        /// `run` erases what was found), `incomplete` (something could not be read: stays unswept), `partial`
        /// (`--dataset`: clean in the datasets swept so far, not yet everywhere).
        public var result: String
        /// The raw id was destroyed before this sweep (deadline): only keyed matches of the subject field count.
        public var keyedOnly: Bool
        public var found: [Found]

        enum CodingKeys: String, CodingKey {
            case id, result, found
            case subjectKey = "subject_key"
            case keyedOnly = "keyed_only"
        }

        public init(id: String, subjectKey: String, result: String, keyedOnly: Bool, found: [Found]) {
            self.id = id
            self.subjectKey = subjectKey
            self.result = result
            self.keyedOnly = keyedOnly
            self.found = found
        }
    }

    public var sweepID: String
    public var startedAt: Int64
    public var seconds: Double
    /// Of `seconds`, the pass over the lake and the state (the rest: requests read, re-indexing, transitions).
    public var scanSeconds: Double
    /// The datasets swept (all with a subject column, or the one `--dataset` named), and whether the state was.
    public var datasets: [String]
    public var state: Bool
    public var objects: Int
    public var bytes: Int64
    public var workers: Int
    public var requests: [RequestResult]
    /// Objects (and datasets, logs, the state) that could not be read: nothing is proven there.
    public var unreadable: [Found]
    /// Raw ids destroyed by this sweep: `swept` (after a clean sweep), `deadline` (expired before it).
    public var rawIDsDestroyedSwept: Int
    public var rawIDsDestroyedDeadline: Int

    public init(sweepID: String, startedAt: Int64, datasets: [String], state: Bool) {
        self.sweepID = sweepID
        self.startedAt = startedAt
        self.seconds = 0
        self.scanSeconds = 0
        self.datasets = datasets
        self.state = state
        self.objects = 0
        self.bytes = 0
        self.workers = 1
        self.requests = []
        self.unreadable = []
        self.rawIDsDestroyedSwept = 0
        self.rawIDsDestroyedDeadline = 0
    }

    /// Bytes of the lake read per second of the pass, in GB/s (decimal).
    public var gbPerSecond: Double { scanSeconds > 0 ? Double(bytes) / scanSeconds / 1e9 : 0 }
    /// `gbPerSecond` divided by the workers that read the objects.
    public var perCoreGBPerSecond: Double { gbPerSecond / Double(max(1, workers)) }

    /// True when every request in scope was swept (mentions allowed): exit 0.
    public var clean: Bool { unreadable.isEmpty && requests.allSatisfy { $0.result == "swept" || $0.result == "partial" } }
}

extension SweepReport: Codable {
    enum CodingKeys: String, CodingKey {
        case sweepID = "sweep_id", startedAt = "started_at", seconds, scanSeconds = "scan_seconds", datasets, state, objects, bytes, workers, requests,
            unreadable
        case gbPerSecond = "gb_per_s", perCoreGBPerSecond = "per_core_gb_per_s"
        case rawIDsDestroyed = "raw_ids_destroyed"
    }
    enum DestroyedKeys: String, CodingKey { case swept, deadline }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sweepID = try c.decode(String.self, forKey: .sweepID)
        startedAt = try c.decode(Int64.self, forKey: .startedAt)
        seconds = try c.decode(Double.self, forKey: .seconds)
        scanSeconds = try c.decode(Double.self, forKey: .scanSeconds)
        datasets = try c.decode([String].self, forKey: .datasets)
        state = try c.decode(Bool.self, forKey: .state)
        objects = try c.decode(Int.self, forKey: .objects)
        bytes = try c.decode(Int64.self, forKey: .bytes)
        workers = try c.decode(Int.self, forKey: .workers)
        requests = try c.decode([RequestResult].self, forKey: .requests)
        unreadable = try c.decode([Found].self, forKey: .unreadable)
        let d = try c.nestedContainer(keyedBy: DestroyedKeys.self, forKey: .rawIDsDestroyed)
        rawIDsDestroyedSwept = try d.decode(Int.self, forKey: .swept)
        rawIDsDestroyedDeadline = try d.decode(Int.self, forKey: .deadline)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sweepID, forKey: .sweepID)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(scanSeconds, forKey: .scanSeconds)
        try c.encode(datasets, forKey: .datasets)
        try c.encode(state, forKey: .state)
        try c.encode(objects, forKey: .objects)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(workers, forKey: .workers)
        try c.encode(requests, forKey: .requests)
        try c.encode(unreadable, forKey: .unreadable)
        try c.encode(gbPerSecond, forKey: .gbPerSecond)
        try c.encode(perCoreGBPerSecond, forKey: .perCoreGBPerSecond)
        var d = c.nestedContainer(keyedBy: DestroyedKeys.self, forKey: .rawIDsDestroyed)
        try d.encode(rawIDsDestroyedSwept, forKey: .swept)
        try d.encode(rawIDsDestroyedDeadline, forKey: .deadline)
    }
}

public import LetheCore

/// What `Lethe.index(changes:)` did.
public struct ChangesIndexReport: Sendable, Equatable {
    /// The objects read, unchanged and removed, and the Delta tables' incremental passes, together.
    public var index = IndexReport()
    /// Keys under no dataset (or under an aggregate without a subject column): nothing to do.
    public var ignoredKeys = 0
    /// Delta tables whose log changed, indexed incrementally.
    public var deltaTables: [String] = []

    public init() {}
}

extension Lethe {
    /// The real-time index: brings the index up to date for the objects at `keys` (lake keys, as
    /// an S3 event notification names them) without listing the lake. Each key is looked up in the
    /// store now, whatever the event said: an object there whose version the index does not have
    /// is scanned, one that is gone leaves the index, one already indexed at its version costs a
    /// HEAD — so repeated, late or reordered notifications are harmless. A key under a Delta
    /// table's `_delta_log/` indexes the commits since the version indexed (as `index` does);
    /// a table's data file joins with the commit that adds it. Keys outside every dataset (or
    /// hidden by name, or Lethe's own temporaries) are ignored. `datasets`: only these.
    public func index(changes keys: [String], datasets names: [String]? = nil) async throws -> ChangesIndexReport {
        return try await durably {
            try await destroyExpiredRawIDs()  // every writing entry point first (sweep.raw_id_days)
            return try await Indexer(self).index(changes: keys, datasets: names)
        }
    }

    /// The datasets (with a subject) whose path (or quarantine, `_quarantine/<name>/`) holds lake key `key`.
    public func datasets(holding key: String) -> [DatasetSpec] {
        config.datasets.filter { $0.subject != nil && $0.holds(key) }
    }
}

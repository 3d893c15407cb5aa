import Foundation
import LetheCore
import LetheStorage

// Writer features an erasure commit honours (protocol: "In-Commit Timestamps", "Row Tracking",
// "Clustered Table").

extension TableMetadata {
    /// `delta.enableInCommitTimestamps` (also read under its preview name).
    public var inCommitTimestamps: Bool {
        configuration["delta.enableInCommitTimestamps"]?.lowercased() == "true"
            || configuration["delta.enableInCommitTimestamps-preview"]?.lowercased() == "true"
    }
    /// `delta.enableRowTracking`.
    public var rowTrackingEnabled: Bool { configuration["delta.enableRowTracking"]?.lowercased() == "true" }
    /// `delta.rowTrackingSuspended`.
    public var rowTrackingSuspended: Bool { configuration["delta.rowTrackingSuspended"]?.lowercased() == "true" }
}

extension Snapshot {
    /// Row tracking is supported and not suspended: every new `add` needs a `baseRowId` and a
    /// `defaultRowCommitVersion`, and the high water mark must cover the Row IDs assigned.
    public var assignsRowIDs: Bool {
        tableProtocol.writerFeatures.contains("rowTracking") && !metadata.rowTrackingSuspended
    }

    /// The highest fresh Row ID assigned so far (`delta.rowTracking` domain), -1 when none.
    public var rowIDHighWaterMark: Int64 {
        guard let text = domainMetadata["delta.rowTracking"]?["configuration"]?.string,
            let j = try? JSONValue.parse(Array(text.utf8)), let n = j["rowIdHighWaterMark"]?.int
        else { return -1 }
        return n
    }

    /// The table's clustering columns (physical names; `delta.clustering` domain), if it is clustered.
    public var clusteringColumns: [[String]] {
        guard let text = domainMetadata["delta.clustering"]?["configuration"]?.string,
            let j = try? JSONValue.parse(Array(text.utf8))
        else {
            // The preview (`liquid` writer feature) kept them in a table property.
            let preview = metadata.configuration["delta.liquid.clusteringColumns"] ?? ""
            return preview.split(separator: ",").map { [$0.trimmingCharacters(in: .whitespaces)] }.filter { !$0[0].isEmpty }
        }
        return (j["clusteringColumns"]?.array ?? []).compactMap { c in
            if let s = c.string { return [s] }
            return c.array?.compactMap(\.string)
        }
    }
}

extension DeltaTable {
    /// The `inCommitTimestamp` a commit at `version` must carry, or nil when none is needed: when
    /// the table has in-commit timestamps on (`enabled`), or the previous commit carries one, it is
    /// the larger of `now` and one millisecond after the previous commit's.
    func inCommitTimestamp(version: Int64, now: Int64, enabled: Bool) async throws -> Int64? {
        var previous: Int64?
        if version > 0, let head = try await store.head(logKey(Self.commitName(version - 1))), head.size > 0 {
            let actions = (try? await commit(version - 1)) ?? []
            for case .commitInfo(let c) in actions { previous = c["inCommitTimestamp"]?.int }
        }
        guard enabled || previous != nil else { return nil }
        return max(now, (previous ?? Int64.min + 1) + 1)
    }

    /// commitInfo for a commit at `version`: `info` with `inCommitTimestamp` (and `timestamp`
    /// equal to it) when the table needs one.
    func stamped(_ info: [String: JSONValue], version: Int64, now: Int64, enabled: Bool) async throws -> [String: JSONValue] {
        var out = info
        if let ict = try await inCommitTimestamp(version: version, now: now, enabled: enabled) {
            out["inCommitTimestamp"] = .int(ict)
            out["timestamp"] = .int(ict)
        }
        return out
    }

    /// Commits a commitInfo-only commit (it does not depend on the table's state) at the next free
    /// version, stamped with an in-commit timestamp where the table needs one; returns the version.
    @discardableResult
    func commitNext(_ info: [String: JSONValue], now: Int64, inCommitTimestamps: Bool, attempts: Int = 20) async throws -> Int64 {
        var i = 0
        while true {
            i += 1
            let next = (try await latestVersion() ?? -1) + 1
            let ci = try await stamped(info, version: next, now: now, enabled: inCommitTimestamps)
            do {
                try await commit([.commitInfo(ci)], version: next)
                return next
            } catch let e as LetheError where e.code == .conflict && i < attempts {
                continue
            }
        }
    }
}

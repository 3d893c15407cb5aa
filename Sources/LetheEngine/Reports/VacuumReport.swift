import Foundation
import LetheCore

/// What `vacuum` did to one Delta dataset.
public struct VacuumReport: Sendable, Equatable {
    public var dataset: String
    public var mode: String
    public var deleted: [String]
    public var unreadableVersions: [ClosedRange<Int64>]
    public var dryRun: Bool
}

extension VacuumReport: Codable {
    enum CodingKeys: String, CodingKey {
        case dataset, mode, deleted, unreadableVersions = "unreadable_versions", dryRun = "dry_run"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataset = try c.decode(String.self, forKey: .dataset)
        mode = try c.decode(String.self, forKey: .mode)
        deleted = try c.decode([String].self, forKey: .deleted)
        dryRun = try c.decode(Bool.self, forKey: .dryRun)
        unreadableVersions = try c.decode([String].self, forKey: .unreadableVersions).map { text in
            let parts = text.split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let a = Int64(parts[0]), let b = Int64(parts[1]), a <= b else {
                throw DecodingError.dataCorruptedError(forKey: .unreadableVersions, in: c, debugDescription: "not FIRST-LAST: \(text)")
            }
            return a...b
        }
    }

    /// Version ranges as `FIRST-LAST`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(mode, forKey: .mode)
        try c.encode(deleted, forKey: .deleted)
        try c.encode(dryRun, forKey: .dryRun)
        try c.encode(unreadableVersions.map { "\($0.lowerBound)-\($0.upperBound)" }, forKey: .unreadableVersions)
    }
}

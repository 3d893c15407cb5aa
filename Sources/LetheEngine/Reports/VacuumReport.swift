import Foundation
import LetheCore

/// What `vacuum` did to one Delta dataset.
public struct VacuumReport: Sendable {
    public var dataset: String
    public var mode: String
    public var deleted: [String]
    public var unreadableVersions: [ClosedRange<Int64>]
    public var dryRun: Bool
}

import Foundation
import LetheCore

/// Where a subject's rows are, with how they are reachable.
public struct LocatedRows: Sendable {
    public var dataset: String
    public var object: String
    /// `live` for every dataset but Delta tables, whose files (and rows a deletion vector
    /// deleted from a live file) may be history or change data.
    public var role: DeltaFileRole
    public var rows: [Int64]
}

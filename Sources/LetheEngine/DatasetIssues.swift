import Foundation
import LetheCore
import LetheCatalog

/// A whole dataset that could not be indexed (an unsupported Delta feature, a corrupt log, a
/// subject column missing from the schema, a folder that cannot be listed). Recorded per dataset
/// by `index` (setting `dataset.<name>.issue` = `<kind>: <one-line message>`), cleared when the
/// dataset indexes cleanly; the other datasets are indexed and erased as usual.
public struct DatasetIssue: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Data Lethe refuses by name (`LetheError.Code.unsupported`): `forget` refuses requests reaching it.
        case unsupported
        /// Data Lethe could not read: requests reaching it fail at `run` with the reason.
        case unreadable
    }
    public var dataset: String
    public var kind: Kind
    public var message: String

    public init(dataset: String, kind: Kind, message: String) {
        self.dataset = dataset; self.kind = kind; self.message = message
    }

    init(dataset: String, error: any Error) {
        let e = error as? LetheError
        self.dataset = dataset
        self.kind = e?.code == .unsupported ? .unsupported : .unreadable
        self.message = Self.oneLine(e?.description ?? "\(error)")
    }

    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// An error as one line (a `LetheError` by its description).
    static func oneLine(error: any Error) -> String {
        oneLine((error as? LetheError)?.description ?? "\(error)")
    }

    var settingValue: String { "\(kind.rawValue): \(message)" }

    init?(dataset: String, setting: String) {
        guard let sep = setting.range(of: ": "), let kind = Kind(rawValue: String(setting[..<sep.lowerBound])) else { return nil }
        self.dataset = dataset; self.kind = kind; self.message = String(setting[sep.upperBound...])
    }

    /// One line for reports: `dataset `x` is unsupported: …`.
    public var description: String { "dataset `\(dataset)` is \(kind.rawValue): \(message)" }
}

/// What the index cannot vouch for: datasets that may hold any subject because they were not
/// fully indexed. Each belongs in every plan and every verification.
struct Coverage: Sendable {
    /// Datasets that could not be indexed at all.
    var issues: [String: DatasetIssue] = [:]
    /// Objects that could not be read, by dataset.
    var quarantined: [String: [IndexedObject]] = [:]
    /// Datasets with a subject column the index has never covered.
    var unindexed: Set<String> = []

    /// The datasets the index cannot vouch for, by name.
    var incomplete: Set<String> { Set(issues.keys).union(quarantined.keys).union(unindexed) }
}

extension Lethe {
    static func issueSetting(_ d: String) -> String { "dataset.\(d).issue" }
    /// When the dataset last indexed cleanly (ms).
    static func indexedSetting(_ d: String) -> String { "dataset.\(d).indexed" }

    /// The datasets of the config that could not be indexed, by name.
    public func datasetIssues() async throws -> [String: DatasetIssue] {
        var out: [String: DatasetIssue] = [:]
        for d in config.datasets where d.subject != nil {
            if let v = try await meta.setting(Self.issueSetting(d.name)), let i = DatasetIssue(dataset: d.name, setting: v) {
                out[d.name] = i
            }
        }
        return out
    }

    func coverage() async throws -> Coverage {
        var c = Coverage()
        c.issues = try await datasetIssues()
        let names = Set(config.datasets.filter { $0.subject != nil }.map(\.name))
        for q in try await meta.quarantinedObjects() where names.contains(q.dataset) { c.quarantined[q.dataset, default: []].append(q) }
        let withObjects = try await meta.datasetsWithObjects()
        for d in config.datasets where d.subject != nil && c.issues[d.name] == nil && !withObjects.contains(d.name) {
            if try await meta.setting(Self.indexedSetting(d.name)) == nil, try await meta.cursors.deltaIndex(dataset: d.name) == nil {
                c.unindexed.insert(d.name)
            }
        }
        return c
    }
}

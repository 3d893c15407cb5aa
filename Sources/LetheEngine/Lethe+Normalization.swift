public import LetheCore
import LetheCatalog
import Foundation

/// Datasets with `normalize: nfc` key NFC-normalised subject values. A request has one subject; in
/// such a dataset it is matched by the key of its NFC form, which differs from its key elsewhere
/// when the id as typed is not in NFC form. That key is computed when the request is planned (the
/// raw id is at hand) and kept in the plan (`nfc_subject_key`), so that running and verifying — even
/// after the raw id is destroyed — use it for those datasets.
extension Lethe {
    /// The key of `subject` in `normalize: nfc` datasets when it differs from its key elsewhere; nil when
    /// the lake has no such dataset or the id is already in NFC form (or is not UTF-8).
    public func nfcKey(for subject: SubjectID) -> SubjectKey? {
        guard config.datasets.contains(where: { $0.normalization == .nfc }),
            let n = subject.bytes.withUnsafeBytes({ Normalization.nfc.apply($0) })
        else { return nil }
        return secrets.hasher.key(forBytes: n)
    }

    /// The key of `subject` in dataset `d`.
    public func key(for subject: SubjectID, in d: DatasetSpec) -> SubjectKey {
        secrets.hasher.key(forBytes: d.normalization.apply(subject.bytes))
    }

    /// A key cache that keys values as dataset `d` does.
    func keyer(for d: DatasetSpec) -> SubjectKeyer {
        SubjectKeyer(hasher: secrets.hasher, normalization: d.normalization)
    }

    /// The index entries of a subject: those of its key, and in `normalize: nfc` datasets those of its NFC key.
    func postings(_ key: SubjectKey, nfc: SubjectKey?) async throws -> [Posting] {
        var out = try await meta.locate(prefix: key.prefix64, dataset: nil)
        if let nfc {
            for d in config.datasets where d.normalization == .nfc {
                out += try await meta.locate(prefix: nfc.prefix64, dataset: d.name)
            }
        }
        return out
    }

    /// `postings(_:nfc:)` of many subjects, in one read of the index per key kind (a batch of requests).
    func postings(_ keys: [SubjectKey], nfc: [SubjectKey: SubjectKey]) async throws -> [SubjectKey: [Posting]] {
        if keys.count == 1 { return [keys[0]: try await postings(keys[0], nfc: nfc[keys[0]])] }
        let byPrefix = try await locate(prefixes: keys.map(\.prefix64), dataset: nil)
        var out: [SubjectKey: [Posting]] = [:]
        for k in keys { out[k] = byPrefix[k.prefix64] ?? [] }
        let nfcDatasets = config.datasets.filter { $0.normalization == .nfc }
        let withNFC = keys.compactMap { k in nfc[k].map { (k, $0) } }
        if !nfcDatasets.isEmpty && !withNFC.isEmpty {
            for d in nfcDatasets {
                let found = try await locate(prefixes: withNFC.map(\.1.prefix64), dataset: d.name)
                for (k, n) in withNFC { out[k, default: []] += found[n.prefix64] ?? [] }
            }
        }
        return out
    }

    /// Many subjects' index entries, read in parts on every core (each part a read of its own): the
    /// 100,000 subjects of a `forget --from` took ~1 s on one. Fewer than `partThreshold`: one read.
    func locate(prefixes: [Int64], dataset: String?) async throws -> [Int64: [Posting]] {
        guard prefixes.count >= Self.partThreshold else { return try await meta.index.locate(prefixes: prefixes, dataset: dataset) }
        // Parts of the sorted prefixes: each part's lookups meet their own stretch of the index's blocks.
        let sorted = Array(Set(prefixes)).sorted()
        let index = meta.index
        let found = try await boundedMap(Self.parts(sorted.count), limit: Self.maxParts) { r in
            try await index.locate(prefixes: Array(sorted[r]), dataset: dataset)
        }
        var out: [Int64: [Posting]] = [:]
        out.reserveCapacity(sorted.count)
        for f in found { out.merge(f) { first, _ in first } }
        return out
    }

    /// From this many subjects on, their entries are read and their plans built in parts, one per core.
    static let partThreshold = 8_192
    static let maxParts = 4

    /// `count` items cut into one contiguous range per core (at most `maxParts`).
    static func parts(_ count: Int) -> [Range<Int>] {
        let n = max(1, min(ProcessInfo.processInfo.activeProcessorCount, maxParts))
        let size = max(1, (count + n - 1) / n)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }

    /// The NFC keys recorded in the plans of `requests`, by request id.
    func nfcKeys(_ requests: [ErasureRequest]) -> [String: SubjectKey] {
        guard config.datasets.contains(where: { $0.normalization == .nfc }) else { return [:] }
        var out: [String: SubjectKey] = [:]
        for r in requests {
            if let hex = r.plan.flatMap(ErasurePlan.decode)?.nfcSubjectKey, let k = SubjectKey(hex: hex) { out[r.id] = k }
        }
        return out
    }

    /// A request's key in dataset `d`, given the NFC keys of `nfcKeys`.
    func subjectKey(of r: ErasureRequest, in d: DatasetSpec?, _ nfc: [String: SubjectKey]) -> SubjectKey {
        d?.normalization == .nfc ? nfc[r.id] ?? r.subjectKey : r.subjectKey
    }
}

extension Lethe {
    /// `nfcKeys` by subject key, for `plans(_:nfc:coverage:)`.
    func nfcByKey(_ requests: [ErasureRequest], _ nfc: [String: SubjectKey]) -> [SubjectKey: SubjectKey] {
        var out: [SubjectKey: SubjectKey] = [:]
        for r in requests { if let k = nfc[r.id] { out[r.subjectKey] = k } }
        return out
    }
}

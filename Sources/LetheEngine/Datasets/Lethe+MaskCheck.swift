import LetheCore
import LetheFormats
import LetheCatalog
import LetheStorage

extension Lethe {
    /// Whether a plan can be refused by `maskRefusal`: some Parquet or Delta dataset masks or blanks.
    var masksColumnarData: Bool {
        config.datasets.contains { ($0.format == .parquet || $0.format == .delta) && Executor.recordAction($0) != nil }
    }

    /// Why a plan's masked Parquet or Delta datasets cannot take their `mask:` (a null in a required
    /// column, text in a numeric one, …), checked on the footer of one indexed file of each; nil when
    /// they can (or nothing is indexed yet: the run checks every file it rewrites). `checked` holds
    /// each dataset's answer for the rest of a batch.
    func maskRefusal(_ plan: ErasurePlan, checked: inout [String: String?]) async -> String? {
        for p in plan.datasets {
            guard let d = config.dataset(named: p.name), d.format == .parquet || d.format == .delta,
                let action = Executor.recordAction(d)
            else { continue }
            if let known = checked[d.name] {
                if let why = known { return why }
                continue
            }
            var why: String?
            do {
                if let o = try await meta.objects(dataset: d.name).first(where: { $0.status == .indexed && $0.key.hasSuffix(".parquet") }),
                    let info = try await store.head(o.key)
                {
                    try await ParquetFormat().checkMask(action, of: info, in: store, maskKey: MaskKey(installation: secrets.hasher))
                }
            } catch let e as LetheError where e.code == .unsupported || e.code == .badInput {
                why = "dataset `\(d.name)` (`erase: \(d.erase.rawValue)`): \(e.message)"
            } catch {
                // Unreadable here: the run reads (and checks) every file it rewrites.
            }
            checked[d.name] = .some(why)
            if let why { return why }
        }
        return nil
    }
}

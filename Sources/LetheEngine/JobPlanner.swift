import LetheCore
import LetheCatalog

/// The steps of a job, planned from the approved requests and what the index knows; pure
/// (no I/O): `run` gathers the inputs, journals `claimed(_:)` with the claim in one transaction.
struct JobPlan: Sendable {
    /// Every step, in order: datasets in lineage order (a dataset's object steps by key, or its one
    /// Delta step, or its dataset-issue step; then its rebuild step), then the closing (settle) step.
    var steps: [JournalStep]
    /// Per request id: its subject key, and its NFC key where its plan recorded one.
    var subjectKeys: [String: SubjectKey]
    var nfcKeys: [String: SubjectKey]
    /// Datasets that key subjects by their NFC form.
    var nfcDatasets: Set<String>

    /// The keys of requests `ids` in `dataset` (sorted, each once).
    func keys(_ ids: [String], _ dataset: String) -> [SubjectKey] {
        Array(Set(ids.compactMap { nfcDatasets.contains(dataset) ? nfcKeys[$0] ?? subjectKeys[$0] : subjectKeys[$0] })).sorted()
    }

    /// The steps that concern the requests actually claimed (others were rejected meanwhile),
    /// each with only those requests and their keys, numbered anew; the settle step always stays.
    func claimed(_ claimed: Set<String>) -> [JournalStep] {
        var kept: [JournalStep] = []
        for var s in steps {
            let ids = s.requestIDs.filter(claimed.contains)
            guard !ids.isEmpty || s.kind == .settle else { continue }
            s.requestIDs = ids
            s.subjectKeys = keys(ids, s.dataset)
            s.ordinal = Int64(kept.count)
            kept.append(s)
        }
        return kept
    }
}

enum JobPlanner {
    /// Plans job `job` for `approved` requests.
    /// - postings: each request's index entries (its key's, and in NFC datasets its NFC key's), by request id.
    /// - coverage: what the index cannot vouch for (datasets not indexed, quarantined objects).
    /// - nfc: the NFC keys recorded in the requests' plans, by request id.
    static func plan(
        job: String, approved: [ErasureRequest], postings: [String: [Posting]], coverage cov: Coverage,
        config: LakeConfig, nfc: [String: SubjectKey]
    ) -> JobPlan {
        var steps: [JournalStep] = []
        func add(_ dataset: String, _ object: String, _ ids: [String], _ keys: [SubjectKey]) {
            steps.append(
                JournalStep(
                    job: job, ordinal: Int64(steps.count), dataset: dataset, objectKey: object,
                    requestIDs: ids, subjectKeys: keys))
        }
        // Per dataset and object: which requests' subjects it holds.
        var holders: [String: [String: [ErasureRequest]]] = [:]
        var scope: [String: Set<String>] = [:]  // dataset → requests whose plan reaches it
        let incomplete = cov.incomplete
        // The tables `deltaTablesOfLastPlan` can name: a request the index finds in all of them needs no
        // look at its last plan (its decode was a third of planning a 1,000-request job).
        let oneCommitTables = config.datasets.filter { $0.subject != nil && DatasetDrivers.driver(for: $0).erasesInOneCommit }.map(\.name)
        for r in approved {
            var holding = Set<String>()
            for p in postings[r.id] ?? [] {
                holders[p.object.dataset, default: [:]][p.object.key, default: []].append(r)
                holding.insert(p.object.dataset)
            }
            // A Delta table its last plan held it in (a retry: the erasure may have committed there while the
            // vacuum or partition scrub after it did not finish) gets its step even when the index finds nothing.
            for d in oneCommitTables.allSatisfy(holding.contains) ? [] : deltaTablesOfLastPlan(r, config: config) where !holding.contains(d) {
                holders[d, default: [:]][Lethe.deltaStepKey, default: []].append(r)
                holding.insert(d)
            }
            // Datasets the index cannot vouch for may hold any subject.
            for d in holding.union(config.downstream(of: holding).map(\.name)).union(incomplete) { scope[d, default: []].insert(r.id) }
        }
        let byID = Dictionary(uniqueKeysWithValues: approved.map { ($0.id, $0) })
        let plan = JobPlan(
            steps: [], subjectKeys: byID.mapValues(\.subjectKey), nfcKeys: nfc,
            nfcDatasets: Set(config.datasets.filter { $0.normalization == .nfc }.map(\.name)))
        let keys = plan.keys
        for d in config.datasets {
            guard let inScope = scope[d.name] else { continue }
            if d.subject != nil, cov.issues[d.name] != nil {
                // The whole dataset cannot be read: its requests fail with the reason (the step says why).
                let rs = inScope.sorted()
                add(d.name, Lethe.issueStepKey, rs, keys(rs, d.name))
            } else if d.subject != nil {
                // The driver lays out its steps: one per object holding the subjects, or one commit for a whole table.
                let rs = inScope.sorted().compactMap { byID[$0] }
                for (key, held) in DatasetDrivers.driver(for: d).planSteps(
                    holders: holders[d.name], inScope: rs,
                    quarantined: cov.quarantined[d.name] ?? [])
                {
                    add(d.name, key, held.map(\.id), keys(held.map(\.id), d.name))
                }
            }
            if d.rebuild != nil {
                let rs = inScope.sorted()
                add(d.name, "", rs, keys(rs, d.name))
            }
        }
        add("", "", approved.map(\.id), approved.map(\.subjectKey))
        var out = plan
        out.steps = steps
        return out
    }

    /// The Delta tables whose subject-holding files `r`'s last plan named (`holds`): a retried
    /// request goes back to each, since its erasure there may have committed while the targeted
    /// vacuum or the partition scrub after it did not finish (the index then finds nothing more).
    static func deltaTablesOfLastPlan(_ r: ErasureRequest, config: LakeConfig) -> [String] {
        guard let bytes = r.plan, let plan = ErasurePlan.decode(bytes) else { return [] }
        return plan.datasets.filter { p in
            guard p.role == "holds", let d = config.dataset(named: p.name), d.subject != nil else { return false }
            return DatasetDrivers.driver(for: d).erasesInOneCommit
        }.map(\.name)
    }
}

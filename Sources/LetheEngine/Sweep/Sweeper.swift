import Foundation
import LetheCore
import LetheCatalog

/// `lethe sweep`: proves verified requests against the whole lake and Lethe's state, independent of
/// the index, then moves each request on (see `Lethe.sweep`).
struct Sweeper: Sendable {
    let lake: Lethe

    /// Settings that held `--dataset` marks before the state had `request_sweeps`: `sweep.mark.<request>.<dataset>`
    /// = the time of the sweep. Read once by the next sweep, moved into `request_sweeps` and removed.
    static let legacyMarkPrefix = "sweep.mark."
    /// The scope of a mark for Lethe's own state (every sweep reads it), and of a whole-lake sweep's.
    static let stateScope = "!state", lakeScope = "lake"
    /// Requests read per page.
    static let page = 1_000

    func sweep(dataset: String?, events: EngineEvents?) async throws -> SweepReport {
        let subjectDatasets = lake.config.datasets.filter { $0.subject != nil }
        var chosen = subjectDatasets
        if let name = dataset {
            guard let d = lake.config.dataset(named: name) else {
                throw LetheError(
                    .badUsage, "no dataset `\(name)` in \(lake.config.file) (datasets: \(lake.config.datasets.map(\.name).joined(separator: ", ")))")
            }
            guard d.subject != nil else { throw LetheError(.badUsage, "dataset `\(name)` has no subject column: nothing to sweep for") }
            chosen = [d]
        }
        let started = lake.now()
        let t0 = DispatchTime.now().uptimeNanoseconds
        var report = SweepReport(
            sweepID: "s-" + String(started, radix: 36) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 36),
            startedAt: started, datasets: chosen.map(\.name), state: true)
        // Raw ids past their deadline go first (a sweep is a writing command); those requests are matched keyed-only.
        report.rawIDsDestroyedDeadline = try await lake.destroyExpiredRawIDs()
        if report.rawIDsDestroyedDeadline > 0 { events?(.rawIDsDestroyed(count: report.rawIDsDestroyedDeadline, why: "deadline")) }

        // The sweep's row, open (no result) until it ends: a killed sweep stays so, its requests unswept.
        var record = SweepRecord(id: report.sweepID, startedAt: started, scope: dataset ?? Self.lakeScope)
        try await begin(record)
        do {
            try await pass(dataset: dataset, chosen: chosen, subjectDatasets: subjectDatasets, into: &report, events: events)
        } catch {
            // Best effort: the row says the sweep failed (the error is what the caller sees).
            record.finishedAt = lake.now()
            record.result = "failed"
            try? await lake.meta.transaction("cannot record the end of sweep \(report.sweepID)") { [record] tx in
                try tx.requests.recordSweep(record)
            }
            throw error
        }
        record.finishedAt = lake.now()
        record.objects = Int64(report.objects)
        record.bytes = report.bytes
        record.result =
            report.clean ? "clean" : report.requests.contains { $0.result == "residue" } ? "residue" : "incomplete"
        try await lake.meta.transaction("cannot record the end of sweep \(report.sweepID)") { [record] tx in
            try tx.requests.recordSweep(record)
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return report
    }

    /// Records the sweep's start; marks an earlier version kept in settings move into `request_sweeps` in the same transaction.
    private func begin(_ record: SweepRecord) async throws {
        let legacy = try await lake.meta.cursors.settings(prefix: Self.legacyMarkPrefix)
        // `sweep.mark.<request>.<dataset>`: request ids hold no dot (`r-` and ten letters).
        var moved: [(request: String, scope: String, at: Int64)] = []
        for (key, value) in legacy {
            let rest = key.dropFirst(Self.legacyMarkPrefix.count)
            guard let dot = rest.firstIndex(of: "."), let at = Int64(value) else { continue }
            moved.append((String(rest[..<dot]), String(rest[rest.index(after: dot)...]), at))
        }
        let sweepID = record.id
        try await lake.meta.transaction("cannot record the start of sweep \(record.id)") { [moved] tx in
            try tx.requests.recordSweep(record)
            for m in moved {
                // The marks of that time covered the state too (every sweep reads it).
                try tx.requests.markSwept(requestIDs: [m.request], scope: m.scope, sweepID: sweepID, at: m.at)
                try tx.requests.markSwept(requestIDs: [m.request], scope: Self.stateScope, sweepID: sweepID, at: m.at)
            }
            for key in legacy.keys { try tx.cursors.removeSetting(key) }
        }
    }

    private func pass(
        dataset: String?, chosen: [DatasetSpec], subjectDatasets: [DatasetSpec], into report: inout SweepReport, events: EngineEvents?
    ) async throws {
        // The requests: verified, not swept yet; raw ids unsealed in memory only.
        var requests: [ErasureRequest] = []
        var after: String?
        repeat {
            let p = try await lake.meta.requests.unswept(after: after, limit: Self.page)
            requests += p.items
            after = p.next
        } while after != nil
        var targets: [SweepScan.Target] = []
        for r in requests {
            let raw = try r.sealedSubject.map { try lake.secrets.unseal($0, requestID: r.id) }
            targets.append(.init(request: r, raw: raw))
        }
        events?(.sweepStarted(requests: targets.count, datasets: chosen.count))

        let scanStart = DispatchTime.now().uptimeNanoseconds
        let scan = try await SweepScan(lake: lake).run(targets, datasets: chosen, state: true, events: events)
        report.scanSeconds = Double(DispatchTime.now().uptimeNanoseconds - scanStart) / 1e9
        report.objects = scan.objects
        report.bytes = scan.bytes
        report.workers = scan.workers
        report.unreadable = scan.unreadable

        // Objects holding records the index missed: indexed again now, so the next run plans them.
        for (name, keys) in scan.recordObjects {
            guard let d = lake.config.dataset(named: name) else { continue }
            let opts = try await lake.scanOptions(for: d)
            for key in keys.sorted() { try await lake.reindex(d, key: key, options: opts) }
        }

        // The scopes this sweep covers: one dataset and the state, or the whole lake.
        let scopes = dataset.map { [$0, Self.stateScope] } ?? [Self.lakeScope]
        let needed = Set(subjectDatasets.map(\.name) + [Self.stateScope])
        // Requests found clean: (their place in the report, the request, mentions), marked swept in chunks below;
        // with `--dataset`, the ones clean here but not yet everywhere get this sweep's marks (also in chunks).
        var clean: [(Int, ErasureRequest, Int)] = []
        var partial: [String] = []
        for t in targets {
            let r = t.request
            let found = (scan.found[r.id] ?? []).map { redact($0, t.raw) }
            let failing = found.filter { $0.kind != "mention" }
            var result = "incomplete"
            // A request another command moved meanwhile (a run, a reject) is left for the next sweep.
            do {
                if !failing.isEmpty {
                    result = "residue"
                    try await sweepFound(r, failing, report.sweepID)
                    events?(.sweepFound(request: r.id, findings: failing.count))
                } else if !scan.unreadable.isEmpty {
                    result = "incomplete"
                } else if dataset != nil {
                    // Marks accumulate: swept once every dataset with a subject column and the state have one since the verification.
                    var covered = Set(scopes)
                    for m in try await lake.meta.requests.sweepMarks(requestID: r.id) where m.at >= r.updatedAt {
                        if m.scope == Self.lakeScope { covered.formUnion(needed) } else { covered.insert(m.scope) }
                    }
                    if covered.isSuperset(of: needed) {
                        result = "swept"
                        clean.append((report.requests.count, r, found.count))
                    } else {
                        result = "partial"
                        partial.append(r.id)
                    }
                } else {
                    result = "swept"
                    clean.append((report.requests.count, r, found.count))
                }
            } catch let e as LetheError where e.code == .conflict {
                result = "incomplete"
            }
            report.requests.append(
                .init(id: r.id, subjectKey: r.subjectKey.hex, result: result, keyedOnly: t.raw == nil, found: found))
        }
        let sweepID = report.sweepID
        for start in stride(from: 0, to: partial.count, by: Lethe.requestChunk) {
            let ids = Array(partial[start..<min(partial.count, start + Lethe.requestChunk)])
            let at = lake.now()
            try await lake.meta.transaction("cannot save the sweep marks of \(ids.count) request(s)") { tx in
                for scope in scopes { try tx.requests.markSwept(requestIDs: ids, scope: scope, sweepID: sweepID, at: at) }
            }
        }
        for start in stride(from: 0, to: clean.count, by: Lethe.requestChunk) {
            let chunk = Array(clean[start..<min(clean.count, start + Lethe.requestChunk)])
            var moved: [Int] = []
            do {
                try await markSwept(chunk.map { ($0.1, $0.2) }, sweepID, scopes: scopes)
            } catch let e as LetheError where e.code == .conflict {
                // One of them moved meanwhile: each on its own, the moved ones left unswept.
                for c in chunk {
                    do {
                        try await markSwept([(c.1, c.2)], sweepID, scopes: scopes)
                    } catch let e as LetheError where e.code == .conflict {
                        moved.append(c.0)
                    }
                }
            }
            for i in moved { report.requests[i].result = "incomplete" }
            for c in chunk where !moved.contains(c.0) && c.1.sealedSubject != nil { report.rawIDsDestroyedSwept += 1 }
        }
        if report.rawIDsDestroyedSwept > 0 { events?(.rawIDsDestroyed(count: report.rawIDsDestroyedSwept, why: "swept")) }
    }

    /// A finding as stored and reported: an object key that names the subject is not repeated (whatever was found in it).
    private func redact(_ f: SweepReport.Found, _ raw: SubjectID?) -> SweepReport.Found {
        guard let raw, f.kind != "state", Residue.key(f.object, names: raw) else { return f }
        var g = f
        g.object = "(an object of `\(f.dataset)` whose key names the subject)"
        return g
    }

    /// Clean: each stays verified, is marked swept and its raw id destroyed, with one `swept` audit entry
    /// listing them (subject keys, mentions; never a raw id) — one transaction for the chunk.
    private func markSwept(_ rs: [(ErasureRequest, Int)], _ sweepID: String, scopes: [String]) async throws {
        let at = lake.now()
        let updated = try rs.map { (try RequestLifecycle.apply(.swept(at: at), to: $0.0).get(), $0.0.status) }
        let ids = rs.map(\.0.id)
        var details: [String: JSONValue] = [
            "sweep_id": .string(sweepID), "count": .int(Int64(rs.count)),
            "raw_ids_destroyed": .int(Int64(rs.filter { $0.0.sealedSubject != nil }.count)),
        ]
        if rs.count == 1 {
            details["subject_key"] = .string(rs[0].0.subjectKey.hex)
            details["mentions"] = .int(Int64(rs[0].1))
        } else {
            details["requests"] = .array(ids.map { .string($0) })
            details["subject_keys"] = .array(rs.map { .string($0.0.subjectKey.hex) })
            details["mentions"] = .array(rs.map { .int(Int64($0.1)) })
        }
        let text = JSONValue.object(details).text
        try await lake.meta.transaction("cannot mark \(rs.count) request(s) swept") { tx in
            for (n, was) in updated { try tx.updateRequest(n, expecting: was) }
            for scope in scopes { try tx.requests.markSwept(requestIDs: ids, scope: scope, sweepID: sweepID, at: at) }
            try tx.audit.append(.swept, requestIDs: ids, actor: "lethe", details: text, at: at)
        }
    }

    /// Residue: the request fails again with what was found (the next run erases it).
    private func sweepFound(_ r: ErasureRequest, _ found: [SweepReport.Found], _ sweepID: String) async throws {
        let json = Array(ReportEncoder.text(found).utf8)
        let kinds = Dictionary(grouping: found, by: \.kind).mapValues { JSONValue.int(Int64($0.count)) }
        let objects = Set(found.map { "\($0.dataset)/\($0.object)" }).count
        try await lake.transition(
            r,
            .sweepFound(
                reason:
                    "the sweep found the subject in \(objects) place(s) the index did not (\(kinds.keys.sorted().joined(separator: ", "))): `lethe run` erases it",
                findings: json, at: lake.now()),
            audit: .sweepFound, actor: "lethe",
            ["subject_key": .string(r.subjectKey.hex), "sweep_id": .string(sweepID), "found": .object(kinds)])
    }
}

extension Lethe {
    /// Sweeps the lake (every dataset with a subject column, or only `dataset`) and Lethe's state for the
    /// raw ids of verified requests not swept yet, independent of the index: a request with nothing but
    /// mentions (its id inside another subject's record) is marked swept and its raw id destroyed; one
    /// whose records, object keys, hidden files, Delta log files or state still hold it fails again (the
    /// objects are re-indexed so the next `run` erases them); one in a dataset that could not be read
    /// stays unswept. With `dataset`, marks accumulate until every dataset was swept since the verification.
    public func sweep(dataset: String? = nil, events: EngineEvents? = nil) async throws -> SweepReport {
        return try await durably {
            try await Sweeper(lake: self).sweep(dataset: dataset, events: events)
        }
    }
}

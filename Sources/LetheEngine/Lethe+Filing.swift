public import LetheCore
import LetheCatalog
import Synchronization

// Filing requests for many callers at once (group commit): the service gathers the filings that
// arrive while one is being written and files them together (`FilingGroup`); each caller gets its
// own requests or its own error.

/// One caller's filing: `forget(subjects, reason:, by:)`.
public struct FilingCall: Sendable {
    public var subjects: [SubjectID]
    public var reason: String
    public var requester: String

    public init(_ subjects: [SubjectID], reason: String, by requester: String) {
        self.subjects = subjects; self.reason = reason; self.requester = requester
    }
}

extension Lethe {
    /// Files the requests of several callers together: the state is read once for all of them (the
    /// raw ids due, open requests, coverage, the index for every subject) and their requests are
    /// written in one transaction. Each caller's result is what `forget` would give it alone: its
    /// requests in the order of its subjects, or its own error — a refusal (a reason holding an id, a
    /// plan reaching unsupported data) fails that caller only, and files nothing of its. A subject two
    /// callers name is filed once (the first caller's reason and name), and both get that request.
    ///
    /// Audit entries are each caller's, as `forget` writes them (`filed` + `planned` for one
    /// subject, one `filed_batch` for several). When the shared transaction cannot commit, each
    /// caller's requests are written in a transaction of their own, so a failure is only its caller's.
    /// Returns once what it filed is durable (`durably`); when that sync fails, each call it filed
    /// for fails with the sync's error.
    public func forget(calls: [FilingCall]) async -> [Result<[ErasureRequest], any Error>] {
        var results: [Result<[ErasureRequest], any Error>] = []
        do {
            try await durably { results = await forget(calls: calls, checkReason: true) }
        } catch {
            return results.map { r in r.flatMap { _ in .failure(error) } }
        }
        return results
    }

    func forget(calls: [FilingCall], checkReason: Bool) async -> [Result<[ErasureRequest], any Error>] {
        var results: [Result<[ErasureRequest], any Error>?] = Array(repeating: nil, count: calls.count)
        for (i, c) in calls.enumerated() {
            do { try checkFiling(c, checkReason: checkReason) } catch { results[i] = .failure(error) }
        }
        do {
            try await fileChecked(calls, &results)
        } catch {
            for i in results.indices where results[i].isPending { results[i] = .failure(error) }
        }
        return results.map { $0 ?? .failure(LetheError(.failure, "the filing was not written")) }
    }

    /// Files the calls whose `results` are still nil (checked); an error thrown fails every one of them.
    private func fileChecked(_ calls: [FilingCall], _ results: inout [Result<[ErasureRequest], any Error>?]) async throws {
        guard results.contains(where: { $0.isPending }) else { return }
        _ = try await Trace.span("filing: expired raw ids") { try await destroyExpiredRawIDs() }
        var t0 = ContinuousClock.now
        var keysOf: [[SubjectKey]] = Array(repeating: [], count: calls.count)
        var subjectOf: [SubjectKey: SubjectID] = [:]
        var allKeys: [SubjectKey] = []
        for (i, c) in calls.enumerated() where results[i].isPending {
            keysOf[i] = c.subjects.map { key(for: $0) }
            for (s, k) in zip(c.subjects, keysOf[i]) where subjectOf[k] == nil {
                subjectOf[k] = s
                allKeys.append(k)
            }
        }
        Trace.mark("filing: \(allKeys.count) subjects keyed", since: t0)
        var openByKey = try await Trace.span("filing: open requests") { try await meta.requests.openRequests(subjectKeys: allKeys) }
        t0 = ContinuousClock.now
        let freshKeys = allKeys.filter { openByKey[$0] == nil }
        var nfc: [SubjectKey: SubjectKey] = [:]
        for k in freshKeys { nfc[k] = nfcKey(for: subjectOf[k]!) }
        Trace.mark("filing: normalized keys", since: t0)
        var plans: [SubjectKey: ErasurePlan] = [:]
        if !freshKeys.isEmpty {
            plans = try await Trace.span("filing: \(freshKeys.count) plans") { try await self.plans(freshKeys, nfc: nfc, coverage: try await coverage()) }
        }
        t0 = ContinuousClock.now
        // Refusals by plan fail their caller only (a refusal depends on the subject alone): data Lethe
        // cannot handle, or a mask the dataset's files cannot take (checked once per dataset).
        var maskChecks: [String: String?] = [:]
        let masks = masksColumnarData
        for i in calls.indices where results[i].isPending {
            if let k = keysOf[i].first(where: { openByKey[$0] == nil && plans[$0]?.refusal != nil }) {
                results[i] = .failure(LetheError(.unsupported, "cannot erase subject \(k.short): \(plans[k]!.refusal!); nothing was filed"))
                continue
            }
            for k in keysOf[i] where masks && openByKey[k] == nil {
                if let plan = plans[k], let why = await maskRefusal(plan, checked: &maskChecks) {
                    results[i] = .failure(LetheError(.unsupported, "cannot erase subject \(k.short): \(why); nothing was filed"))
                    break
                }
            }
        }
        // Each new request belongs to the first caller still standing that names its subject.
        var owned: [[SubjectKey]] = Array(repeating: [], count: calls.count)
        var owner: [SubjectKey: Int] = [:]
        for i in calls.indices where results[i].isPending {
            for k in keysOf[i] where openByKey[k] == nil && owner[k] == nil {
                owner[k] = i
                owned[i].append(k)
            }
        }
        let order = calls.indices.filter { !owned[$0].isEmpty }
        let flat = order.flatMap { owned[$0] }
        let ids = try Self.newRequestIDs(flat.count)
        Trace.mark("filing: refusals, owners", since: t0)
        t0 = ContinuousClock.now
        let (sealed, tags) = try await sealAndTag(flat.map { subjectOf[$0]! }, requestIDs: ids)
        Trace.mark("filing: \(ids.count) raw ids sealed", since: t0)
        t0 = ContinuousClock.now
        var digests: [String: String] = [:]
        var groups: [(call: Int, filed: [(ErasureRequest, ErasurePlan)])] = []
        var n = 0
        for i in order {
            let c = calls[i]
            if digests[c.requester] == nil { digests[c.requester] = meta.textDigest(c.requester) }
            var filed: [(ErasureRequest, ErasurePlan)] = []
            filed.reserveCapacity(owned[i].count)
            for k in owned[i] {
                var r = ErasureRequest(id: ids[n], subjectKey: k, sealedSubject: sealed[n], reason: c.reason, requestedBy: c.requester, at: now())
                r.streamTag = tags[n]
                r.requesterDigest = digests[c.requester]
                r.rawDueAt = config.rawIDDue(filedAt: r.filedAt)
                filed.append((r, plans[k]!))
                n += 1
            }
            groups.append((i, filed))
        }
        Trace.mark("filing: requests built", since: t0)
        t0 = ContinuousClock.now
        defer { Trace.mark("filing: written", since: t0) }
        // The writes: one transaction for every caller (one caller alone: as `forget` always wrote).
        var failedKeys: [SubjectKey: any Error] = [:]
        openByKey.reserveCapacity(openByKey.count + n)
        if groups.count == 1 {
            let g = groups[0]
            let stored = try await write(g.filed, calls[g.call])
            for r in stored { openByKey[r.subjectKey] = r }
        } else if !groups.isEmpty {
            do {
                let prepared = try groups.map { g in try prepare(g.filed, calls[g.call]) }
                try await meta.transaction("cannot file \(n) requests of \(groups.count) callers") { tx in
                    for p in prepared { try p.write(tx) }
                }
                for p in prepared { for r in p.stored { openByKey[r.subjectKey] = r } }
            } catch {
                // Each caller's requests on their own: a failure is only its caller's.
                for g in groups {
                    do {
                        for r in try await write(g.filed, calls[g.call]) { openByKey[r.subjectKey] = r }
                    } catch {
                        for (r, _) in g.filed { failedKeys[r.subjectKey] = error }
                    }
                }
            }
        }
        for i in calls.indices where results[i].isPending {
            if let e = keysOf[i].lazy.compactMap({ failedKeys[$0] }).first {
                results[i] = .failure(e)
            } else {
                results[i] = .success(keysOf[i].map { openByKey[$0]! })
            }
        }
    }

    /// The sealed raw ids of new requests (`StateSecrets.seal`, each bound to its request id) and their
    /// stream tags, in the subjects' order: in parts, one per core, from `partThreshold` subjects on.
    func sealAndTag(_ subjects: [SubjectID], requestIDs ids: [String]) async throws -> (sealed: [[UInt8]], tags: [UInt64]) {
        let secrets = self.secrets
        let ranges = subjects.count >= Self.partThreshold ? Self.parts(subjects.count) : [0..<subjects.count]
        let done = try await boundedMap(ranges, limit: ranges.count) { r in
            (try secrets.seal(Array(subjects[r]), requestIDs: Array(ids[r])), subjects[r].map { secrets.streamTag($0) })
        }
        return (done.flatMap(\.0), done.flatMap(\.1))
    }

    /// One caller's new requests as `forget` writes them: one request in one transaction (`filed`,
    /// `planned`), several in chunks of `requestChunk` (`filed_batch`).
    private func write(_ filed: [(ErasureRequest, ErasurePlan)], _ c: FilingCall) async throws -> [ErasureRequest] {
        if filed.count == 1 { return [try await fileOne(filed[0].0, filed[0].1)] }
        return try await fileBatch(filed, reason: c.reason, by: c.requester)
    }

    /// One caller's new requests as writes inside a shared transaction (its entries as `write` makes them).
    private func prepare(_ filed: [(ErasureRequest, ErasurePlan)], _ c: FilingCall) throws -> PreparedFiling {
        if filed.count == 1 { return try prepareOne(filed[0].0, filed[0].1) }
        return try prepareBatch(filed[...], reason: c.reason, by: c.requester)
    }
}

extension Optional {
    /// True while a caller's result is not decided.
    fileprivate var isPending: Bool {
        if case .none = self { return true }
        return false
    }
}

/// Group commit of concurrent filings (the service's `POST /v1/requests`): a filing that arrives
/// while others are being written waits, and the filings that waited are filed together by
/// `Lethe.forget(calls:)` — one read of the state and one write transaction for all of them instead
/// of one each. Each caller gets its own result or error. A batch holds at most `maxSubjects`
/// subjects (a caller with more is filed alone). Batches are written one after another by one
/// drainer task, so a subject filed by one batch is an open request for the next.
///
/// A graceful stop of the service waits for its calls in flight, and so for the batch they are in:
/// every caller is answered, and what was answered is committed.
public final class FilingGroup: Sendable {
    public let lethe: Lethe
    public let maxSubjects: Int
    /// Runs before each batch is filed, with the number of calls it holds (tests: a stop mid-batch).
    let beforeBatch: (@Sendable (Int) async -> Void)?

    private struct Waiting {
        var call: FilingCall
        var continuation: CheckedContinuation<[ErasureRequest], any Error>
    }
    private struct State {
        var waiting: [Waiting] = []
        var draining = false
        var batches = 0
        var calls = 0
        var largest = 0
    }
    private let state = Mutex(State())

    /// `beforeBatch`: a test hook run before each batch is filed, given its number of calls.
    public init(lethe: Lethe, maxSubjects: Int = 10_000, beforeBatch: (@Sendable (Int) async -> Void)? = nil) {
        self.lethe = lethe
        self.maxSubjects = max(1, maxSubjects)
        self.beforeBatch = beforeBatch
    }

    /// Files `subjects` as `Lethe.forget` does, together with the filings waiting beside it.
    public func forget(_ subjects: [SubjectID], reason: String, by requester: String) async throws -> [ErasureRequest] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[ErasureRequest], any Error>) in
            let start = state.withLock { s -> Bool in
                s.waiting.append(Waiting(call: FilingCall(subjects, reason: reason, by: requester), continuation: c))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Filings waiting for the batch under way to end.
    public var waiting: Int { state.withLock { $0.waiting.count } }

    /// Batches written so far, the calls they held, and the most calls one batch held.
    public var counts: (batches: Int, calls: Int, largest: Int) { state.withLock { ($0.batches, $0.calls, $0.largest) } }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Waiting] in
                guard !s.waiting.isEmpty else {
                    s.draining = false
                    return []
                }
                var n = 0, total = 0
                while n < s.waiting.count, n == 0 || total + s.waiting[n].call.subjects.count <= maxSubjects {
                    total += s.waiting[n].call.subjects.count
                    n += 1
                }
                let taken = Array(s.waiting.prefix(n))
                s.waiting.removeFirst(n)
                s.batches += 1
                s.calls += n
                s.largest = max(s.largest, n)
                return taken
            }
            if batch.isEmpty { return }
            await beforeBatch?(batch.count)
            let results = await lethe.forget(calls: batch.map(\.call))
            for (w, r) in zip(batch, results) { w.continuation.resume(with: r) }
        }
    }
}

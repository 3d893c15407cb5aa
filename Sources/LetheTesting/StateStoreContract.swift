public import LetheCatalog
public import LetheCore
public import Testing

/// What every `StateStore` must do, as checks a test target runs against its store (SQLite in a
/// folder and in memory; PostgreSQL later): `@Test(arguments: StateStoreContract.Check.allCases)`
/// calling `StateStoreContract.run(check, auditKey: k) { a fresh, empty store keyed with k }`.
public enum StateStoreContract {
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case indexWritesReadBack
        case requestWritesReadBack
        case requestUpdateIsACompareAndSetOnStatus
        case auditAppendsChainAndTextsReadBack
        case journalWritesReadBack
        case cursorsAndSettingsReadBack
        case aTransactionLandsWholeOrNotAtAllForEveryWriter
        case requestPagesResumeAfterTheirCursor
        case auditChainVerifiesAcrossPageBoundaries
        case batchWritesAndTheirIndexesReadBack
        case purgeOfManyIDsEqualsOneAtATime
        case sweepMarksAndRecordsReadBack
        case decisionsSaveOnlyTheirFields
        case locateOfManyPrefixesEqualsOneAtATime
        case derivedEntriesReadBackAsDerivationSays
        case derivedEntriesOnlyFromTheVersionHeld
        case derivedObjectsReindexQuarantineAndRemoveCleanly
        case derivedReplacementsTakeTheOldKeysEntry
        case tokensReadBackByHashAndNamesAreUniqueAmongLiveTokens
        case outboxMessagesAndDeliveriesReadBack
        case outboxLeaseHasOneHolderAndFencesAStaleOne
        case outboxPruneDeletesOnlyWhatEverySinkHasHad
        case vaultKeysInsertOnceReadBackAndDestroy
        case vaultCompactRowsByPrefixExactRowsAndRewrap
        public var testDescription: String { rawValue }
    }

    /// Runs `check` against the store `make` returns (empty, used by this check only, its audit
    /// chain keyed with `auditKey`).
    public static func run(_ check: Check, auditKey: [UInt8]?, _ make: () async throws -> any StateStore) async throws {
        let store = try await make()
        switch check {
        case .indexWritesReadBack: try await indexWritesReadBack(store)
        case .requestWritesReadBack: try await requestWritesReadBack(store)
        case .requestUpdateIsACompareAndSetOnStatus: try await requestUpdateIsACompareAndSetOnStatus(store)
        case .auditAppendsChainAndTextsReadBack: try await auditAppendsChainAndTextsReadBack(store, key: auditKey)
        case .journalWritesReadBack: try await journalWritesReadBack(store)
        case .cursorsAndSettingsReadBack: try await cursorsAndSettingsReadBack(store)
        case .aTransactionLandsWholeOrNotAtAllForEveryWriter: try await aTransactionLandsWholeOrNotAtAllForEveryWriter(store)
        case .requestPagesResumeAfterTheirCursor: try await requestPagesResumeAfterTheirCursor(store)
        case .auditChainVerifiesAcrossPageBoundaries: try await auditChainVerifiesAcrossPageBoundaries(store, key: auditKey)
        case .batchWritesAndTheirIndexesReadBack: try await batchWritesAndTheirIndexesReadBack(store)
        case .purgeOfManyIDsEqualsOneAtATime: try await purgeOfManyIDsEqualsOneAtATime(store)
        case .sweepMarksAndRecordsReadBack: try await sweepMarksAndRecordsReadBack(store)
        case .decisionsSaveOnlyTheirFields: try await decisionsSaveOnlyTheirFields(store)
        case .locateOfManyPrefixesEqualsOneAtATime: try await locateOfManyPrefixesEqualsOneAtATime(store)
        case .derivedEntriesReadBackAsDerivationSays: try await derivedEntriesReadBackAsDerivationSays(store)
        case .derivedEntriesOnlyFromTheVersionHeld: try await derivedEntriesOnlyFromTheVersionHeld(store)
        case .derivedObjectsReindexQuarantineAndRemoveCleanly: try await derivedObjectsReindexQuarantineAndRemoveCleanly(store)
        case .derivedReplacementsTakeTheOldKeysEntry: try await derivedReplacementsTakeTheOldKeysEntry(store)
        case .tokensReadBackByHashAndNamesAreUniqueAmongLiveTokens: try await tokensReadBackByHashAndNamesAreUniqueAmongLiveTokens(store)
        case .outboxMessagesAndDeliveriesReadBack: try await outboxMessagesAndDeliveriesReadBack(store)
        case .outboxLeaseHasOneHolderAndFencesAStaleOne: try await outboxLeaseHasOneHolderAndFencesAStaleOne(store)
        case .outboxPruneDeletesOnlyWhatEverySinkHasHad: try await outboxPruneDeletesOnlyWhatEverySinkHasHad(store)
        case .vaultKeysInsertOnceReadBackAndDestroy: try await vaultKeysInsertOnceReadBackAndDestroy(store)
        case .vaultCompactRowsByPrefixExactRowsAndRewrap: try await vaultCompactRowsByPrefixExactRowsAndRewrap(store)
        }
    }

    // MARK: Fixtures

    /// A deterministic subject key from a small number.
    public static func subjectKey(_ n: UInt8) -> SubjectKey {
        var b = [UInt8](repeating: 0x5A, count: 32)
        b[0] = n
        b[31] = n
        return SubjectKey(bytes: b)
    }

    /// A filed request for subject `n`, filed at `n` ms.
    public static func filed(_ id: String, _ n: UInt8, tag: UInt64? = nil) -> ErasureRequest {
        var r = ErasureRequest(id: id, subjectKey: subjectKey(n), sealedSubject: [n, n], reason: "ticket \(n)", requestedBy: "alice", at: Int64(n))
        r.streamTag = tag
        return r
    }

    /// `r` at `status`, updated at `at`.
    static func moved(_ r: ErasureRequest, to status: RequestStatus, at: Int64) -> ErasureRequest {
        var n = r
        n.status = status
        n.updatedAt = at
        return n
    }

    static func object(_ dataset: String, _ key: String, version: String = "v1") -> IndexedObject {
        IndexedObject(
            dataset: dataset, key: key, size: 100, modifiedNanos: 1_700_000_000_000_000_000, version: version,
            records: 10, status: .indexed, indexedAt: 1_700_000_000)
    }

    /// The code of the `LetheError` `body` throws (nil when it does not throw; `.failure` for another error).
    static func errorCode(_ body: () async throws -> Void) async -> LetheError.Code? {
        do {
            try await body()
            return nil
        } catch let e as LetheError {
            return e.code
        } catch {
            return .failure
        }
    }

    struct Injected: Error, Equatable {}

    // MARK: Checks

    /// The subject index: objects and postings written in one transaction read back by dataset and
    /// by key prefix; quarantine drops postings; object references are stable; removal hides postings.
    public static func indexWritesReadBack(_ s: any StateStore) async throws {
        let stored = try await s.transaction("t") { tx in
            try tx.index.putIndexedObjects([
                (object("d", "d/a"), [7: [0, 3]]), (object("d", "d/b"), [7: [1], 9: [2]]),
                (object("e", "e/a"), [9: [5]]),
            ])
        }
        #expect(stored.map(\.key) == ["d/a", "d/b", "e/a"])
        #expect(Set(stored.map(\.id)).count == 3)
        #expect(try await s.index.objects(dataset: "d").map(\.key) == ["d/a", "d/b"])
        #expect(try await s.index.datasetsWithObjects() == ["d", "e"])
        let seven = try await s.index.locate(prefix: 7, dataset: nil).sorted { $0.object.key < $1.object.key }
        #expect(seven.map(\.object.key) == ["d/a", "d/b"] && seven.map(\.rows) == [[0, 3], [1]])
        #expect(try await s.index.locate(prefix: 9, dataset: "e").map(\.object.key) == ["e/a"])
        #expect(try await s.index.locate(prefix: 8, dataset: nil).isEmpty)
        let stats = try await s.index.indexStats()
        #expect(stats.objects == 3 && stats.quarantined == 0 && stats.postings == 4)

        var unreadable = object("d", "d/b", version: "v2")
        unreadable.issue = "cannot parse line 3"
        let bad = unreadable
        let q = try await s.transaction("t") { tx in try tx.index.quarantine(bad) }
        #expect(q.status == .quarantined && q.key == "d/b")
        #expect(try await s.index.quarantinedObjects().map(\.key) == ["d/b"])
        #expect(try await s.index.locate(prefix: 7, dataset: "d").map(\.object.key) == ["d/a"])

        let refs = try await s.transaction("t") { tx in try tx.index.objectRefs(dataset: "d", keys: ["d/a", "d/gone"]) }
        #expect(refs.count == 2)
        let again = try await s.transaction("t") { tx in try tx.index.objectRefs(dataset: "d", keys: ["d/gone", "d/a"]) }
        #expect(again == refs)
        let names = try await s.index.objectNames(Array(refs.values))
        #expect(names[refs["d/a"]!]?.key == "d/a" && names[refs["d/gone"]!]?.dataset == "d")

        try await s.transaction("t") { tx in try tx.index.removeObjects(dataset: "d", keys: ["d/a"]) }
        #expect(try await s.index.objects(dataset: "d").map(\.key) == ["d/b"])
        #expect(try await s.index.locate(prefix: 7, dataset: nil).isEmpty)
        _ = try await s.transaction("t") { tx in try tx.index.purgeDeadPostings(force: true) }
        #expect(try await s.index.locate(prefix: 9, dataset: nil).map(\.object.key) == ["e/a"])
    }

    /// Requests: inserted ones read back by id, by status and by subject (open ones only); an id
    /// is filed once; the deletion set names forgotten requests' stream tags; untagged requests
    /// that keep their sealed subject are listed.
    public static func requestWritesReadBack(_ s: any StateStore) async throws {
        let a = filed("r-1", 1, tag: 11), b = filed("r-2", 2, tag: 22), c = filed("r-3", 3)
        try await s.transaction("t") { tx in for r in [a, b, c] { try tx.requests.insert(r) } }
        #expect(try await s.requests.request(id: "r-2") == b)
        #expect(try await s.requests.request(id: "r-9") == nil)
        #expect(await errorCode { try await s.transaction("t") { tx in try tx.requests.insert(a) } } == .conflict)

        try await s.transaction("t") { tx in
            try tx.requests.update(moved(a, to: .approved, at: 100), expecting: .filed)
            try tx.requests.update(moved(b, to: .rejected, at: 100), expecting: .filed)
        }
        #expect(try await s.requests.requests(status: .approved).map(\.id) == ["r-1"])
        #expect(try await s.requests.requests(status: nil).map(\.id) == ["r-1", "r-2", "r-3"])
        let inTx = try await s.transaction("t") { tx in try tx.requests.requests(status: .filed).map(\.id) }
        #expect(inTx == ["r-3"])
        // A batch read: the existing ones, in the order asked, with their current fields.
        let some = try await s.requests.requests(ids: ["r-3", "r-9", "r-1"])
        #expect(some.map(\.id) == ["r-3", "r-1"] && some.last?.status == .approved && some.first == c)
        #expect(try await s.requests.requests(ids: []).isEmpty)
        let open = try await s.requests.openRequests(subjectKeys: [subjectKey(1), subjectKey(2), subjectKey(3), subjectKey(4)])
        #expect(open.mapValues(\.id) == [subjectKey(1): "r-1", subjectKey(3): "r-3"])  // r-2 is rejected: closed

        let whole = try await s.requests.deletionTags(since: Int64.min)
        #expect(whole.added == [11] && whole.latest == 100)
        let since = try await s.requests.deletionTags(since: 100)
        #expect(since.added == [11] && since.removed == [22])
        #expect(try await s.requests.deletionTags(since: 101).added.isEmpty)
        #expect(try await s.requests.requestsWithoutStreamTag().map(\.id) == ["r-3"])
    }

    /// Bulk request writes (in order; a conflict names the request and nothing of the transaction
    /// lands), a batch audit entry found from each request it lists (and single entries from theirs),
    /// the unswept verified requests, and the raw ids past their deadline.
    public static func batchWritesAndTheirIndexesReadBack(_ s: any StateStore) async throws {
        var rs = (1...5).map { filed("r-\($0)", UInt8($0)) }
        for i in rs.indices { rs[i].rawDueAt = Int64(100 + i) }
        let batch = rs
        try await s.transaction("t") { tx in try tx.requests.insert(batch) }
        #expect(try await s.requests.requests(status: nil).map(\.id) == ["r-1", "r-2", "r-3", "r-4", "r-5"])
        #expect(try await s.requests.request(id: "r-3") == rs[2])
        #expect(await errorCode { try await s.transaction("t") { tx in try tx.requests.insert([filed("r-6", 6), batch[0]]) } } == .conflict)
        #expect(try await s.requests.request(id: "r-6") == nil)

        let planned = rs.map { moved($0, to: .planned, at: 10) }
        let (batchEntry, single) = try await s.transaction("t") { tx -> (AuditEntry, AuditEntry) in
            try tx.requests.update(planned, expecting: .filed)
            let b = try tx.audit.append(.filedBatch, requestIDs: planned.map(\.id), actor: "lethe", details: #"{"n":5}"#, at: 10)
            let one = try tx.audit.append(.approved, requestID: "r-2", actor: "lethe", details: "{}", at: 11)
            return (b, one)
        }
        #expect(await errorCode { try await s.transaction("t") { tx in try tx.requests.update(planned, expecting: .filed) } } == .conflict)
        #expect(try await s.requests.requests(status: .planned).count == 5)
        #expect(try await s.audit.entries(requestID: "r-2").map(\.seq) == [batchEntry.seq, single.seq])
        #expect(try await s.audit.entries(requestID: "r-5").map(\.seq) == [batchEntry.seq])
        #expect(try await s.audit.entries(requestID: "r-9").isEmpty)

        // Unswept: verified and not swept, in filing order, paged.
        var v = planned.map { moved($0, to: .verified, at: 20) }
        v[1].sweptAt = 21
        v[1].sealedSubject = nil
        let verified = v
        try await s.transaction("t") { tx in try tx.requests.update(verified, expecting: .planned) }
        let first = try await s.requests.unswept(after: nil, limit: 2)
        #expect(first.items.map(\.id) == ["r-1", "r-3"])
        var ids = first.items.map(\.id), next = first.next
        while let n = next {
            let page = try await s.requests.unswept(after: n, limit: 2)
            ids += page.items.map(\.id)
            next = page.next
        }
        #expect(ids == ["r-1", "r-3", "r-4", "r-5"])
        // Raw ids due: held, deadline at or before now, in deadline order.
        #expect(try await s.requests.rawIDsDue(now: 99, limit: 10).isEmpty)
        #expect(try await s.requests.rawIDsDue(now: 102, limit: 10).map(\.id) == ["r-1", "r-3"])  // r-2's is destroyed
        #expect(try await s.requests.rawIDsDue(now: 1_000, limit: 2).map(\.id) == ["r-1", "r-3"])
    }

    /// `locate(prefixes:)` (a batch, here of more prefixes than one statement may take) finds for each
    /// prefix what `locate(prefix:)` finds, in the same order, with and without a dataset; absent
    /// prefixes are left out.
    public static func locateOfManyPrefixesEqualsOneAtATime(_ s: any StateStore) async throws {
        var objects: [(IndexedObject, [Int64: [Int64]])] = []
        for i in 0..<6 {
            var postings: [Int64: [Int64]] = [:]
            for p in stride(from: Int64(-40 + i), to: 1_300, by: 3 + i) { postings[p] = [Int64(i), p & 0xff + 10] }
            postings[Int64.min] = [1]
            postings[Int64.max] = [Int64(i)]
            objects.append((object(i % 2 == 0 ? "d" : "e", "\(i % 2 == 0 ? "d" : "e")/\(5 - i)"), postings))
        }
        let batch = objects
        _ = try await s.transaction("t") { tx in try tx.index.putIndexedObjects(batch) }
        let prefixes = Array(Int64(-50)..<1_320) + [Int64.min, Int64.max, 7, 7]
        func same(_ a: [Posting], _ b: [Posting]) -> Bool {
            a.map(\.object.key) == b.map(\.object.key) && a.map(\.rows) == b.map(\.rows) && a.map(\.object.id) == b.map(\.object.id)
        }
        for dataset in [nil, "e"] as [String?] {
            let many = try await s.index.locate(prefixes: prefixes, dataset: dataset)
            var found = 0
            for p in Set(prefixes) {
                let one = try await s.index.locate(prefix: p, dataset: dataset)
                #expect(same(many[p] ?? [], one), "prefix \(p)")
                #expect((many[p] == nil) == one.isEmpty)
                found += one.isEmpty ? 0 : 1
            }
            #expect(many.count == found && found > 300)
        }
        #expect(try await s.index.locate(prefixes: [], dataset: nil).isEmpty)
    }

    /// `saveDecisions` saves status, decider, decision reason and update time (compare-and-set on the
    /// status, the whole batch or nothing) and leaves every other field as stored; the readers by status
    /// and by update time see the change.
    public static func decisionsSaveOnlyTheirFields(_ s: any StateStore) async throws {
        let rs = (1...3).map { moved(filed("r-\($0)", UInt8($0), tag: UInt64($0)), to: .planned, at: 10) }
        try await s.transaction("t") { tx in try tx.requests.insert(rs) }
        var decided = rs.map { moved($0, to: .approved, at: 20) }
        for i in decided.indices {
            decided[i].decidedBy = "bob"
            decided[i].decisionReason = "ok \(i)"
            decided[i].reason = "not saved"
            decided[i].attempts = 7
        }
        let batch = decided
        try await s.transaction("t") { tx in try tx.requests.saveDecisions(Array(batch[0..<2]), expecting: .planned) }
        for i in 0..<2 {
            var want = rs[i]
            want.status = .approved
            want.updatedAt = 20
            want.decidedBy = "bob"
            want.decisionReason = "ok \(i)"
            #expect(try await s.requests.request(id: rs[i].id) == want)
        }
        // r-1 is no longer planned: the batch is refused whole, r-3 stays planned.
        #expect(
            await errorCode { try await s.transaction("t") { tx in try tx.requests.saveDecisions([batch[2], batch[0]], expecting: .planned) } } == .conflict)
        #expect(try await s.requests.request(id: "r-3") == rs[2])
        #expect(try await s.requests.requests(status: .approved).map(\.id) == ["r-1", "r-2"])
        #expect(try await s.requests.requests(status: .planned).map(\.id) == ["r-3"])
        #expect(try await s.requests.deletionTags(since: 20).added.sorted() == [1, 2])
    }

    /// Sweep marks per request and scope (a later sweep moves a mark forward, an older one does not move
    /// it back) and sweep records (updated by id) read back.
    public static func sweepMarksAndRecordsReadBack(_ s: any StateStore) async throws {
        try await s.transaction("t") { tx in
            try tx.requests.markSwept(requestIDs: ["r-1", "r-2"], scope: "raw", sweepID: "s-1", at: 10)
            try tx.requests.markSwept(requestIDs: ["r-1"], scope: "!state", sweepID: "s-1", at: 10)
            try tx.requests.recordSweep(SweepRecord(id: "s-1", startedAt: 5, scope: "raw"))
        }
        try await s.transaction("t") { tx in
            try tx.requests.markSwept(requestIDs: ["r-1"], scope: "raw", sweepID: "s-2", at: 20)
            try tx.requests.markSwept(requestIDs: ["r-2"], scope: "raw", sweepID: "s-0", at: 1)
            try tx.requests.recordSweep(SweepRecord(id: "s-1", startedAt: 5, finishedAt: 9, scope: "raw", objects: 3, bytes: 300, result: "swept"))
        }
        #expect(
            try await s.requests.sweepMarks(requestID: "r-1")
                == [SweepMark(requestID: "r-1", scope: "!state", sweepID: "s-1", at: 10), SweepMark(requestID: "r-1", scope: "raw", sweepID: "s-2", at: 20)])
        #expect(try await s.requests.sweepMarks(requestID: "r-2") == [SweepMark(requestID: "r-2", scope: "raw", sweepID: "s-1", at: 10)])
        #expect(try await s.requests.sweepMarks(requestID: "r-9").isEmpty)
        #expect(
            try await s.requests.sweep(id: "s-1")
                == SweepRecord(id: "s-1", startedAt: 5, finishedAt: 9, scope: "raw", objects: 3, bytes: 300, result: "swept"))
        #expect(try await s.requests.sweep(id: "s-9") == nil)
    }

    /// `purge(rawIDs:)` removes what purging each id on its own removes (object names, audit texts,
    /// names and free text of requests, settings), long and short ids mixed in one call.
    public static func purgeOfManyIDsEqualsOneAtATime(_ s: any StateStore) async throws {
        let ids: [[UInt8]] = [Array("u-00077".utf8), Array("u7".utf8), Array("acct-123456".utf8), Array("nothing-here".utf8)]
        let keys = ["user=u-00077/a.json", "p/u7/x.json", "p/u77/y.json", "ok/acct-123456.json", "keep"]
        let (refs, texts) = try await s.transaction("seed") { tx -> ([String: Int64], [AuditTextRef]) in
            let refs = try tx.index.objectRefs(dataset: "d", keys: keys)
            var r = filed("r-1", 1)
            r.reason = "ticket for u-00077 and acct-123456"
            r.requestedBy = "u7"
            try tx.requests.insert(r)
            var q = filed("r-2", 2)
            q.reason = "about u-000777 (another id)"
            try tx.requests.insert(q)
            let texts = try ["u-00077", "said acct-123456 twice", "u7", "u77"].map { try tx.audit.text($0) }
            try tx.cursors.setSetting("x", "last acct-123456")
            return (refs, texts)
        }
        let changed = try await s.transaction("t") { tx in try tx.purge(rawIDs: ids) }
        #expect(changed >= 9)
        let names = try await s.index.objectNames(Array(refs.values)).mapValues(\.key)
        #expect(Set(names.values) == ["p/u77/y.json", "keep"])
        let mark = AuditTexts.purgedMark
        let r1 = try await s.requests.request(id: "r-1")
        #expect(r1?.reason == "ticket for \(mark) and \(mark)" && r1?.requestedBy == mark && r1?.requesterDigest != nil)
        #expect(try await s.requests.request(id: "r-2")?.reason == "about u-000777 (another id)")
        let t = try await s.audit.texts()
        #expect(t.purged == Set(texts[0...2].map(\.id)) && t.texts[texts[3].id] == "u77")
        #expect(try await s.cursors.setting("x") == "last \(mark)")
    }

    /// `update(_:expecting:)` saves only while the stored status is the expected one (`.conflict`
    /// otherwise, nothing changed): of two writers that read the same request, one wins.
    public static func requestUpdateIsACompareAndSetOnStatus(_ s: any StateStore) async throws {
        let r = filed("r-1", 1)
        try await s.transaction("t") { tx in try tx.requests.insert(r) }
        let first = moved(r, to: .planned, at: 10), second = moved(r, to: .rejected, at: 11)
        try await s.transaction("t") { tx in try tx.requests.update(first, expecting: .filed) }
        #expect(await errorCode { try await s.transaction("t") { tx in try tx.requests.update(second, expecting: .filed) } } == .conflict)
        #expect(try await s.requests.request(id: "r-1") == first)
        // An absent request is not created by an update.
        _ = await errorCode {
            try await s.transaction("t") { tx in try tx.requests.update(moved(filed("r-9", 9), to: .planned, at: 1), expecting: .filed) }
        }
        #expect(try await s.requests.request(id: "r-9") == nil)
        try await s.transaction("t") { tx in try tx.requests.update(moved(first, to: .approved, at: 12), expecting: .planned) }
        #expect(try await s.requests.request(id: "r-1")?.status == .approved)
    }

    /// Appends are numbered from 1 and chained (each links the previous hash); the head is the
    /// last; a text stored for an entry reads back and its digest is the reader's `textDigest`.
    public static func auditAppendsChainAndTextsReadBack(_ s: any StateStore, key: [UInt8]?) async throws {
        #expect(try await s.audit.head() == nil)
        let (ref, entries) = try await s.transaction("t") { tx -> (AuditTextRef, [AuditEntry]) in
            let ref = try tx.audit.text("ticket 42")
            var out: [AuditEntry] = []
            for i in 0..<3 {
                out.append(
                    try tx.audit.append(
                        .filed, requestID: "r-\(i)", actor: i == 0 ? ref.actor : "lethe",
                        details: i == 0 ? #"{"actor":{"hmac":"\#(ref.hmac)","text":\#(ref.id)}}"# : "{}", at: Int64(i)))
            }
            return (ref, out)
        }
        #expect(entries.map(\.seq) == [1, 2, 3])
        #expect(entries[0].prevHash == AuditChain.genesis)
        #expect(entries[1].prevHash == entries[0].hash && entries[2].prevHash == entries[1].hash)
        #expect(try await s.audit.entries(from: 1, limit: 10) == entries)
        #expect(try await s.audit.head() == entries.last)
        #expect(ref.hmac == s.audit.textDigest("ticket 42"))
        #expect(ref.hmac == AuditChain.textDigest("ticket 42", key: key))
        let texts = try await s.audit.texts()
        #expect(texts.texts[ref.id] == "ticket 42" && texts.purged.isEmpty)
        #expect(verifyAuditTexts(entries, texts: texts, key: key).ok)
        var v = AuditChainVerifier(key: key)
        v.feed(entries)
        #expect(v.finish().ok)
    }

    /// The journal: a job's steps (created once), attempts counted, ends recorded, pending jobs and
    /// the requests they name, pruning of finished steps; temporary files recorded and forgotten.
    public static func journalWritesReadBack(_ s: any StateStore) async throws {
        let steps = [
            JournalStep(job: "j-1", ordinal: 0, dataset: "d", objectKey: "d/a", requestIDs: ["r-1"], subjectKeys: [subjectKey(1)]),
            JournalStep(job: "j-1", ordinal: 1, dataset: "d", objectKey: "", requestIDs: ["r-1", "r-2"], subjectKeys: [subjectKey(1), subjectKey(2)]),
        ]
        try await s.transaction("t") { tx in try tx.journal.createJob(steps) }
        try await s.transaction("t") { tx in try tx.journal.createJob(steps) }  // no-op
        #expect(try await s.journal.steps(job: "j-1") == steps)
        #expect(steps[1].kind == .rebuild)
        #expect(try await s.journal.pendingSteps() == steps)
        #expect(try await s.transaction("t") { tx in try tx.requests.pendingRequestIDs() } == ["r-1", "r-2"])
        #expect(try await s.transaction("t") { tx in try tx.journal.beginStep(job: "j-1", ordinal: 0) } == 1)
        #expect(try await s.transaction("t") { tx in try tx.journal.beginStep(job: "j-1", ordinal: 0) } == 2)
        try await s.transaction("t") { tx in try tx.journal.finishStep(job: "j-1", ordinal: 0, state: .done, outcome: #"{"rows":1}"#) }
        let after = try await s.journal.steps(job: "j-1")
        #expect(after[0].state == .done && after[0].outcome == #"{"rows":1}"# && after[0].attempts == 2)
        try await s.transaction("t") { tx in try tx.journal.pruneJob("j-1") }
        #expect(try await s.journal.steps(job: "j-1").map(\.ordinal) == [1])  // the pending one stays
        try await s.transaction("t") { tx in try tx.journal.finishStep(job: "j-1", ordinal: 1, state: .failed, outcome: "gone") }
        #expect(try await s.journal.pendingSteps().isEmpty)
        #expect(try await s.transaction("t") { tx in try tx.requests.pendingRequestIDs() }.isEmpty)
        try await s.transaction("t") { tx in try tx.journal.pruneJob("j-1") }
        #expect(try await s.journal.steps(job: "j-1").isEmpty)

        try await s.transaction("t") { tx in
            try tx.journal.recordTemporary("d/.tmp-1", owner: 42, table: nil)
            try tx.journal.recordTemporary("t/part-1.parquet", owner: 42, table: "t")
        }
        let temps = try await s.journal.temporaries().sorted { $0.key < $1.key }
        #expect(temps == [TemporaryFile(key: "d/.tmp-1", owner: 42), TemporaryFile(key: "t/part-1.parquet", owner: 42, table: "t")])
        try await s.transaction("t") { tx in try tx.journal.forgetTemporaries(["d/.tmp-1", "absent"]) }
        #expect(try await s.journal.temporaries().map(\.key) == ["t/part-1.parquet"])
    }

    /// Typed cursors and settings: written in a transaction, read back by the reader and inside a
    /// transaction; settings listed by prefix; removed ones gone.
    public static func cursorsAndSettingsReadBack(_ s: any StateStore) async throws {
        let cursor = DeltaIndexCursor(version: 7, columns: [["user", "id"]], partitions: ["day": "string"], utc: [true], checks: 3)
        #expect(try await s.cursors.deltaIndex(dataset: "t") == nil)
        #expect(try await s.cursors.propagation(dataset: "t") == nil)
        try await s.transaction("t") { tx in
            try tx.cursors.setDeltaIndex(cursor, dataset: "t")
            try tx.cursors.setPropagation(12, dataset: "t")
            try tx.cursors.setSetting("x.a", "1")
            try tx.cursors.setSetting("x.b", "2")
            try tx.cursors.setSetting("y", "3")
        }
        #expect(try await s.cursors.deltaIndex(dataset: "t") == cursor)
        #expect(try await s.cursors.deltaIndex(dataset: "u") == nil)
        #expect(try await s.cursors.propagation(dataset: "t") == 12)
        #expect(try await s.cursors.setting("y") == "3")
        #expect(try await s.cursors.settings(prefix: "x.") == ["x.a": "1", "x.b": "2"])
        let inTx = try await s.transaction("t") { tx in
            (try tx.cursors.deltaIndex(dataset: "t"), try tx.cursors.propagation(dataset: "t"), try tx.cursors.setting("x.a"))
        }
        #expect(inTx.0 == cursor && inTx.1 == 12 && inTx.2 == "1")
        try await s.transaction("t") { tx in
            try tx.cursors.setSetting("y", "4")
            try tx.cursors.removeSetting("x.a")
            try tx.cursors.setPropagation(13, dataset: "t")
        }
        #expect(try await s.cursors.setting("y") == "4")
        #expect(try await s.cursors.setting("x.a") == nil)
        #expect(try await s.cursors.propagation(dataset: "t") == 13)
    }

    /// For each writer, a transaction that writes through it and then fails leaves nothing, and
    /// the body's own error comes back unchanged; the same writes without the failure all land.
    public static func aTransactionLandsWholeOrNotAtAllForEveryWriter(_ s: any StateStore) async throws {
        let r = filed("r-1", 1, tag: 5)
        let writes: [(String, @Sendable (any StateTransaction) throws -> Void)] = [
            ("index", { tx in _ = try tx.index.putIndexedObjects([(object("d", "d/a"), [7: [0]])]) }),
            ("requests", { tx in try tx.requests.insert(r) }),
            (
                "audit",
                { tx in
                    _ = try tx.audit.append(.filed, requestID: "r-1", actor: nil, details: "{}", at: 1); _ = try tx.audit.text("t")
                }
            ),
            (
                "journal",
                { tx in
                    try tx.journal.createJob([JournalStep(job: "j", ordinal: 0, dataset: "d", objectKey: "d/a", requestIDs: ["r-1"], subjectKeys: [])])
                    try tx.journal.recordTemporary("d/.tmp", owner: 1, table: nil)
                }
            ),
            (
                "cursors",
                { tx in
                    try tx.cursors.setSetting("x", "1"); try tx.cursors.setPropagation(3, dataset: "t")
                }
            ),
        ]
        func nothing() async throws -> Bool {
            let objects = try await s.index.objects(dataset: "d"), request = try await s.requests.request(id: "r-1")
            let head = try await s.audit.head(), texts = try await s.audit.texts()
            let steps = try await s.journal.steps(job: "j"), temporaries = try await s.journal.temporaries()
            let setting = try await s.cursors.setting("x"), propagation = try await s.cursors.propagation(dataset: "t")
            return objects.isEmpty && request == nil && head == nil && texts.texts.isEmpty && steps.isEmpty
                && temporaries.isEmpty && setting == nil && propagation == nil
        }
        for (name, write) in writes {
            await #expect(throws: Injected.self, "\(name) alone") {
                try await s.transaction("t") { tx in
                    try write(tx); throw Injected()
                }
            }
            #expect(try await nothing(), "a failed transaction left \(name) writes")
        }
        await #expect(throws: Injected.self) {
            try await s.transaction("t") { tx in
                for (_, w) in writes { try w(tx) }; throw Injected()
            }
        }
        #expect(try await nothing(), "a failed transaction left writes")
        // A store error inside (a duplicate id) fails the whole transaction too.
        try await s.transaction("t") { tx in try tx.requests.insert(filed("r-0", 9)) }
        #expect(
            await errorCode {
                try await s.transaction("t") { tx in
                    try tx.cursors.setSetting("x", "1"); try tx.requests.insert(filed("r-0", 9))
                }
            } == .conflict)
        #expect(try await s.cursors.setting("x") == nil)

        try await s.transaction("t") { tx in for (_, w) in writes { try w(tx) } }
        #expect(try await s.index.objects(dataset: "d").count == 1)
        #expect(try await s.requests.request(id: "r-1") == r)
        #expect(try await s.audit.head()?.requestID == "r-1")
        #expect(try await s.journal.steps(job: "j").count == 1)
        #expect(try await s.journal.temporaries().count == 1)
        #expect(try await s.cursors.setting("x") == "1")
        #expect(try await s.cursors.propagation(dataset: "t") == 3)
    }

    /// Request pages: in filing order, at most `limit` each, resuming after their cursor (a page
    /// that is exactly full may leave a cursor to an empty last page); by status; a request that
    /// leaves the status between two pages is neither repeated nor skips another; a cursor that
    /// is not the store's is refused.
    public static func requestPagesResumeAfterTheirCursor(_ s: any StateStore) async throws {
        let all = (1...10).map { filed($0 < 10 ? "r-0\($0)" : "r-\($0)", UInt8($0)) }
        try await s.transaction("t") { tx in for r in all { try tx.requests.insert(r) } }
        func pages(_ status: RequestStatus?, _ limit: Int, between: (([ErasureRequest]) async throws -> Void)? = nil) async throws -> [[String]] {
            var out: [[String]] = [], after: String?
            repeat {
                let p = try await s.requests.requests(status: status, after: after, limit: limit)
                #expect(p.items.count <= limit)
                if !p.items.isEmpty { out.append(p.items.map(\.id)) }
                try await between?(p.items)
                after = p.next
            } while after != nil && out.count <= all.count
            return out
        }
        let ids = all.map(\.id)
        for limit in [1, 3, 9, 10, 11] {
            let p = try await pages(nil, limit)
            #expect(p.flatMap { $0 } == ids, "limit \(limit)")
            #expect(p.count == (ids.count + limit - 1) / limit, "limit \(limit)")
        }
        let last = try await s.requests.requests(status: nil, after: nil, limit: 10)
        if let next = last.next {
            let empty = try await s.requests.requests(status: nil, after: next, limit: 10)
            #expect(empty.items.isEmpty && empty.next == nil)
        }
        #expect(try await s.requests.requests(status: nil, after: nil, limit: 11).next == nil)

        // Every other request planned; then page the planned ones, approving each page as it is read.
        try await s.transaction("t") { tx in
            for r in all.enumerated().filter({ $0.offset % 2 == 1 }).map(\.element) {
                try tx.requests.update(moved(r, to: .planned, at: 50), expecting: .filed)
            }
        }
        let planned = ids.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(try await pages(.planned, 2).flatMap { $0 } == planned)
        #expect(try await pages(.filed, 4).flatMap { $0 } == ids.filter { !planned.contains($0) })
        let approvedWhilePaging = try await pages(.planned, 2) { page in
            let stored = try await page.asyncMap { try await s.requests.request(id: $0.id)! }
            try await s.transaction("t") { tx in
                for r in stored { try tx.requests.update(moved(r, to: .approved, at: 60), expecting: .planned) }
            }
        }
        #expect(approvedWhilePaging.flatMap { $0 } == planned)
        #expect(try await s.requests.requests(status: .planned).isEmpty)
        #expect(try await s.requests.requests(status: .approved).map(\.id) == planned)
        #expect(await errorCode { _ = try await s.requests.requests(status: nil, after: "not a cursor", limit: 2) } != nil)
    }

    /// The audit log read in pages of any size (ranges `entries(from:limit:)`) is the whole log;
    /// fed page by page the chain verifies with the key, as read whole; a page left out is caught
    /// where the chain resumes; a range past the end is empty.
    public static func auditChainVerifiesAcrossPageBoundaries(_ s: any StateStore, key: [UInt8]?) async throws {
        for batch in 0..<5 {
            try await s.transaction("t") { tx in
                for i in 0..<5 {
                    let ref = try tx.audit.text("note \(batch).\(i)")
                    _ = try tx.audit.append(
                        i % 2 == 0 ? .filed : .planned, requestID: "r-\(batch)", actor: "lethe",
                        details: #"{"reason":{"hmac":"\#(ref.hmac)","text":\#(ref.id)}}"#, at: Int64(batch * 10 + i))
                }
            }
        }
        let whole = try await s.audit.entries(from: 1, limit: Int.max)
        #expect(whole.count == 25)
        #expect(try await s.audit.entries(from: 26, limit: 5).isEmpty)
        #expect(try await s.audit.entries(from: 24, limit: 5).map(\.seq) == [24, 25])
        let texts = try await s.audit.texts()
        for size in [1, 4, 5, 24, 25, 26] {
            var v = AuditChainVerifier(key: key)
            var read: [AuditEntry] = [], from: Int64 = 1
            while true {
                let page = try await s.audit.entries(from: from, limit: size)
                #expect(page.count <= size)
                read += page
                v.feed(page)
                #expect(verifyAuditTexts(page, texts: texts, key: key).ok)
                guard page.count == size, let last = page.last else { break }
                from = last.seq + 1
            }
            #expect(read == whole, "pages of \(size)")
            let result = v.finish()
            #expect(result.ok, "pages of \(size): \(result.reason ?? "")")
            #expect(v.count == 25 && v.head == whole.last)
        }
        // A page left out (entries 9...12) is caught at the entry after it, naming the missing ones.
        var gap = AuditChainVerifier(key: key)
        gap.feed(try await s.audit.entries(from: 1, limit: 8))
        gap.feed(try await s.audit.entries(from: 13, limit: 8))
        let broken = gap.finish()
        #expect(broken.firstBroken == 13 && broken.reason?.contains("9…12") == true)
        // Under another key the chain does not verify.
        var other = AuditChainVerifier(key: [UInt8](repeating: 0xEE, count: 32))
        other.feed(whole)
        #expect(!other.finish().ok)
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ f: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await f(e)) }
        return out
    }
}

// MARK: Vault keys (crypto-shredding, issue 15)

extension StateStoreContract {
    static func vaultKeysInsertOnceReadBackAndDestroy(_ store: any StateStore) async throws {
        let a = subjectKey(1), b = subjectKey(2), c = subjectKey(3)
        // Two KEKs (the store keeps each name once and a small id per row), GCM's 60 bytes and key wrap's 40.
        @Sendable func key(_ s: SubjectKey, _ id: UInt8, wrapped: UInt8) -> WrappedDataKey {
            s == c
                ? WrappedDataKey(
                    subject: s, keyID: [UInt8](repeating: id, count: 8), kek: "kms:alias/other", wrapped: [UInt8](repeating: wrapped, count: 40),
                    createdAt: 8)
                : WrappedDataKey(
                    subject: s, keyID: [UInt8](repeating: id, count: 8), kek: "file:test", wrapped: [UInt8](repeating: wrapped, count: 60), createdAt: 7)
        }
        #expect(try await store.vault.vaultKeyCount() == 0)
        #expect(try await store.vault.wrappedKeys(subjects: [a, b]).isEmpty)
        let held = try await store.transaction("insert") { tx in try tx.vault.insertKeys([key(a, 1, wrapped: 0xA1), key(b, 2, wrapped: 0xB2)]) }
        #expect(held[a] == key(a, 1, wrapped: 0xA1))
        #expect(held[b] == key(b, 2, wrapped: 0xB2))
        // A second writer for `a` (and a new subject `c`): `a` keeps the key stored first.
        let again = try await store.transaction("insert again") { tx in try tx.vault.insertKeys([key(a, 9, wrapped: 0x99), key(c, 3, wrapped: 0xC3)]) }
        #expect(again[a] == key(a, 1, wrapped: 0xA1))
        #expect(again[c] == key(c, 3, wrapped: 0xC3))
        #expect(try await store.vault.vaultKeyCount() == 3)
        let read = try await store.vault.wrappedKeys(subjects: [a, b, c, subjectKey(4)])
        #expect(read.count == 3 && read[b] == key(b, 2, wrapped: 0xB2))
        // Destroying is idempotent, returns what it destroyed, and lands with the rest of its transaction.
        let gone = try await store.transaction("destroy") { tx in try tx.vault.destroyKeys(subjects: [b, subjectKey(4), b]) }
        #expect(gone == [b])
        #expect(try await store.transaction("destroy again") { tx in try tx.vault.destroyKeys(subjects: [b]) }.isEmpty)
        await #expect(throws: (any Error).self) {
            try await store.transaction("destroy, then fail") { tx -> Int in
                _ = try tx.vault.destroyKeys(subjects: [a])
                throw LetheError(.failure, "boom")
            }
        }
        let left = try await store.vault.wrappedKeys(subjects: [a, b, c])
        #expect(Set(left.keys) == [a, c])
        #expect(try await store.vault.vaultKeyCount() == 2)
        // Inside a transaction, the writer reads what it wrote.
        let seen = try await store.transaction("read") { tx in try tx.vault.wrappedKeys(subjects: [a, b]) }
        #expect(Set(seen.keys) == [a])
    }

    /// v13: a compact row is keyed by the subject key's first 12 bytes (two subjects sharing them read
    /// the same row: ownership is the KEK's to prove), an exact row by the whole key and read first;
    /// destroying a row as read never touches another subject's; rotation reads rows by KEK and
    /// re-wraps each only when it is still as read.
    static func vaultCompactRowsByPrefixExactRowsAndRewrap(_ store: any StateStore) async throws {
        var db = [UInt8](repeating: 0x11, count: 32)
        let d = SubjectKey(bytes: db)
        db[31] = 0x22
        let e = SubjectKey(bytes: db)  // the same 12-byte prefix as d
        let f = subjectKey(9)
        @Sendable func row(_ s: SubjectKey, _ id: UInt8, exact: Bool, kek: String = "file:a") -> WrappedDataKey {
            WrappedDataKey(
                subject: s, keyID: [UInt8](repeating: id, count: 8), kek: kek, wrapped: [UInt8](repeating: id &+ 1, count: 32), createdAt: exact ? 5 : 0,
                exact: exact)
        }
        let held = try await store.transaction("insert") { tx in try tx.vault.insertKeys([row(d, 1, exact: false), row(f, 3, exact: false)]) }
        #expect(held[d] == row(d, 1, exact: false) && held[f] == row(f, 3, exact: false))
        // e shares d's prefix: the store answers d's compact row for e (not e's: the vault checks).
        #expect(try await store.vault.wrappedKeys(subjects: [e])[e] == row(e, 1, exact: false))
        // A second compact insert for the prefix keeps the first; e then gets an exact row, read first.
        let again = try await store.transaction("collide") { tx in try tx.vault.insertKeys([row(e, 2, exact: false)]) }
        #expect(again[e]?.keyID == row(e, 1, exact: false).keyID)
        let exact = try await store.transaction("exact") { tx in try tx.vault.insertKeys([row(e, 2, exact: true)]) }
        #expect(exact[e] == row(e, 2, exact: true))
        let both = try await store.vault.wrappedKeys(subjects: [d, e])
        #expect(both[d] == row(d, 1, exact: false) && both[e] == row(e, 2, exact: true))
        #expect(try await store.vault.vaultKeyCount() == 3)
        #expect(try await store.vault.vaultKeyCountsByKEK() == ["file:a": 3])
        // Rotation's read: every row of a KEK, exact rows first, then compact rows in prefix order, in pages.
        let p1 = try await store.vault.vaultRows(kek: "file:a", after: nil, limit: 2)
        #expect(p1.count == 2 && p1[0].exact && p1[0].rowKey == e.bytes && !p1[1].exact && p1[1].rowKey == Array(f.bytes.prefix(12)))
        let p2 = try await store.vault.vaultRows(kek: "file:a", after: p1[1], limit: 2)
        #expect(p2.map(\.rowKey) == [Array(d.bytes.prefix(12))])
        #expect(try await store.vault.vaultRows(kek: "file:b", after: nil, limit: 9).isEmpty)
        // Re-wrap: only a row still as read; the KEK moves with it.
        let moved = try await store.transaction("rewrap") { tx in
            [
                try tx.vault.rewrapKey(p1[0], kek: "file:b", wrapped: [UInt8](repeating: 0xEE, count: 32)),
                try tx.vault.rewrapKey(p1[0], kek: "file:b", wrapped: [0]),
            ]
        }
        #expect(moved == [true, false])
        #expect(try await store.vault.wrappedKeys(subjects: [e])[e]?.kek == "file:b")
        #expect(try await store.vault.vaultKeyCountsByKEK() == ["file:a": 2, "file:b": 1])
        #expect(try await store.vault.vaultRows(kek: "file:a", after: nil, limit: 9).count == 2)
        // Destroying d's row as read leaves e's exact row; destroying e by subject takes its exact row only.
        #expect(try await store.transaction("destroy d") { tx in try tx.vault.destroyKeys([row(d, 1, exact: false)]) } == [d])
        #expect(try await store.transaction("destroy d again") { tx in try tx.vault.destroyKeys([row(d, 1, exact: false)]) }.isEmpty)
        #expect(try await store.vault.wrappedKeys(subjects: [d, e]).keys.sorted() == [e])
        _ = try await store.transaction("d again") { tx in try tx.vault.insertKeys([row(d, 4, exact: false)]) }
        #expect(try await store.transaction("destroy e") { tx in try tx.vault.destroyKeys(subjects: [e]) } == [e])
        let left = try await store.vault.wrappedKeys(subjects: [d, e])
        #expect(left[d]?.keyID == row(d, 4, exact: false).keyID && left[e]?.exact == false)
    }
}

import LetheCatalog
import LetheCore
import Testing

// What every store does for `lethe serve` (issue 14): API tokens and the notification outbox.

extension StateStoreContract {
    /// Tokens: stored by hash and found by it, a live name is unique (a revoked one can be given
    /// again), revocation, last use only moves forward, and a transaction that fails leaves no token.
    static func tokensReadBackByHashAndNamesAreUniqueAmongLiveTokens(_ s: any StateStore) async throws {
        let h1 = [UInt8](repeating: 1, count: 32), h2 = [UInt8](repeating: 2, count: 32), h3 = [UInt8](repeating: 3, count: 32)
        let bob = try await s.transaction("t") { tx in try tx.tokens.insertToken(name: "bob", role: .approver, hash: h1, at: 10) }
        #expect(bob.name == "bob" && bob.role == .approver && bob.createdAt == 10 && bob.isLive)
        let found = try await s.tokens.token(hash: h1)
        #expect(found?.token == bob && found?.hash == h1)
        #expect(try await s.tokens.token(hash: h2) == nil)
        // A second live `bob` is a conflict; nothing of that transaction lands.
        await #expect(throws: LetheError.self) {
            try await s.transaction("t") { tx in
                _ = try tx.tokens.insertToken(name: "carol", role: .admin, hash: h3, at: 11)
                _ = try tx.tokens.insertToken(name: "bob", role: .admin, hash: h2, at: 11)
            }
        }
        do {
            _ = try await s.transaction("t") { tx in try tx.tokens.insertToken(name: "bob", role: .admin, hash: h2, at: 11) }
            Issue.record("a second live token named bob was stored")
        } catch let e as LetheError {
            #expect(e.code == .conflict)
        }
        #expect(try await s.tokens.allTokens().map(\.name) == ["bob"])
        try await s.transaction("t") { tx in try tx.tokens.touchToken(id: bob.id, at: 50) }
        try await s.transaction("t") { tx in try tx.tokens.touchToken(id: bob.id, at: 40) }
        #expect(try await s.tokens.token(hash: h1)?.token.lastUsedAt == 50)
        let revoked = try await s.transaction("t") { tx in try tx.tokens.revokeToken(name: "bob", at: 60) }
        #expect(revoked?.id == bob.id && revoked?.revokedAt == 60)
        #expect(try await s.transaction("t") { tx in try tx.tokens.revokeToken(name: "bob", at: 61) } == nil)
        #expect(try await s.tokens.token(hash: h1)?.token.isLive == false)
        // The name is free again.
        let bob2 = try await s.transaction("t") { tx in try tx.tokens.insertToken(name: "bob", role: .requester, hash: h2, at: 70) }
        #expect(bob2.id > bob.id)
        let all = try await s.tokens.allTokens()
        #expect(all.map(\.id) == [bob.id, bob2.id])
        #expect(all.map(\.isLive) == [false, true])
        #expect(all[0].lastUsedAt == 50 && all[1].role == .requester)
        // The same hash twice is refused (a token is one secret).
        await #expect(throws: (any Error).self) {
            try await s.transaction("t") { tx in _ = try tx.tokens.insertToken(name: "dan", role: .stream, hash: h1, at: 80) }
        }
    }

    /// The outbox: messages in order with their payloads, a new sink starts after the history,
    /// pending lists what a sink has not had (with its attempts), deliveries and failures read back,
    /// a delivered message is never pending again (a late failure does not undo it), floors only rise.
    static func outboxMessagesAndDeliveriesReadBack(_ s: any StateStore) async throws {
        let payload = JSONValue.object(["event": .string("filed"), "request_id": .string("r-1"), "n": .int(3)])
        let first = try await s.transaction("t") { tx in try tx.outbox.enqueue(requestID: "r-1", event: "filed", payload: payload, at: 5) }
        let hook = try await s.transaction("t") { tx in try tx.outbox.registerSink("webhook:a") }
        #expect(hook == first)
        #expect(try await s.outbox.floor(sink: "webhook:a") == first)
        #expect(try await s.outbox.floor(sink: "email") == nil)
        let seqs = try await s.transaction("t") { tx in
            [
                try tx.outbox.enqueue(requestID: "r-1", event: "planned", payload: .object(["a": .int(1)]), at: 6),
                try tx.outbox.enqueue(requestID: nil, event: "approved", payload: .object([:]), at: 7),
                try tx.outbox.enqueue(requestID: "r-2", event: "filed", payload: .object(["b": .string("x/y")]), at: 8),
            ]
        }
        #expect(seqs == seqs.sorted() && seqs[0] > first)
        let all = try await s.outbox.messages(after: 0, limit: 100)
        #expect(all.map(\.seq) == [first] + seqs)
        #expect(all[0] == OutboxMessage(seq: first, requestID: "r-1", event: "filed", payload: payload, createdAt: 5))
        #expect(all[2].requestID == nil && all[3].payload["b"] == .string("x/y"))
        #expect(try await s.outbox.messages(after: seqs[0], limit: 1).map(\.seq) == [seqs[1]])
        var pending = try await s.outbox.pending(sink: "webhook:a", after: hook, limit: 100)
        #expect(pending.map(\.message.seq) == seqs)
        #expect(pending.allSatisfy { $0.attempts == 0 && $0.nextAttemptAt == 0 && $0.lastError == nil })
        try await s.transaction("t") { tx in
            try tx.outbox.deliveryFailed(sink: "webhook:a", seq: seqs[0], attempts: 1, nextAttemptAt: 1_000, error: "HTTP 503")
            try tx.outbox.delivered(sink: "webhook:a", seqs: [seqs[1]], at: 9)
        }
        pending = try await s.outbox.pending(sink: "webhook:a", after: hook, limit: 100)
        #expect(pending.map(\.message.seq) == [seqs[0], seqs[2]])
        #expect(pending[0].attempts == 1 && pending[0].nextAttemptAt == 1_000 && pending[0].lastError == "HTTP 503")
        // Another sink's state is its own.
        #expect(try await s.outbox.pending(sink: "email", after: 0, limit: 100).count == 4)
        try await s.transaction("t") { tx in
            try tx.outbox.delivered(sink: "webhook:a", seqs: [seqs[0]], at: 12)
            // A failure recorded after the delivery (a slow duplicate attempt) does not undo it.
            try tx.outbox.deliveryFailed(sink: "webhook:a", seq: seqs[0], attempts: 2, nextAttemptAt: 2_000, error: "late")
        }
        #expect(try await s.outbox.pending(sink: "webhook:a", after: hook, limit: 100).map(\.message.seq) == [seqs[2]])
        let d = try await s.outbox.deliveries(seq: seqs[0])
        #expect(d.count == 1 && d[0].sink == "webhook:a" && d[0].deliveredAt == 12 && d[0].attempts == 2 && d[0].lastError == "HTTP 503")
        try await s.transaction("t") { tx in
            try tx.outbox.setFloor(sink: "webhook:a", seq: seqs[1])
            try tx.outbox.setFloor(sink: "webhook:a", seq: seqs[0])
        }
        #expect(try await s.outbox.floor(sink: "webhook:a") == seqs[1])
        // A rolled-back transaction leaves no message.
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await s.transaction("t") { tx in
                try tx.outbox.enqueue(requestID: "r-3", event: "filed", payload: .object([:]), at: 20)
                throw Boom()
            }
        }
        #expect(try await s.outbox.messages(after: 0, limit: 100).count == 4)
    }
}

extension StateStoreContract {
    /// A sink's dispatch lease: one holder at a time; the holder renews it; another takes it only once
    /// it has expired or was released; a stale holder's fenced write (`holdLease`) fails, so its
    /// transaction lands nothing; concurrent takers of a free lease: exactly one wins.
    static func outboxLeaseHasOneHolderAndFencesAStaleOne(_ s: any StateStore) async throws {
        #expect(try await s.outbox.lease(sink: "webhook:a") == nil)
        _ = try await s.transaction("t") { tx in try tx.outbox.registerSink("webhook:a") }
        #expect(try await s.outbox.lease(sink: "webhook:a") == OutboxLease(holder: nil, until: 0))
        // Not registered: no lease to take.
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "email", holder: "A", until: 100, now: 0) } == false)
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "A", until: 100, now: 0) })
        #expect(try await s.outbox.lease(sink: "webhook:a") == OutboxLease(holder: "A", until: 100))
        // B cannot take it while it lasts; A renews it (take again, or hold).
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "B", until: 150, now: 50) } == false)
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "A", until: 160, now: 60) })
        #expect(try await s.transaction("t") { tx in try tx.outbox.holdLease(sink: "webhook:a", holder: "A", until: 200) })
        #expect(try await s.outbox.lease(sink: "webhook:a") == OutboxLease(holder: "A", until: 200))
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "B", until: 299, now: 199) } == false)
        // Expired: B takes it over; A's fenced write fails and its transaction lands nothing.
        #expect(try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "B", until: 300, now: 200) })
        let seq = try await s.transaction("t") { tx in try tx.outbox.enqueue(requestID: "r-1", event: "filed", payload: .object([:]), at: 5) }
        struct Fenced: Error {}
        await #expect(throws: Fenced.self) {
            try await s.transaction("t") { tx in
                guard try tx.outbox.holdLease(sink: "webhook:a", holder: "A", until: 400) else { throw Fenced() }
                try tx.outbox.delivered(sink: "webhook:a", seqs: [seq], at: 210)
            }
        }
        #expect(try await s.outbox.deliveries(seq: seq).isEmpty)
        #expect(try await s.outbox.lease(sink: "webhook:a") == OutboxLease(holder: "B", until: 300))
        // A release by another than the holder does nothing; the holder's frees it at once.
        try await s.transaction("t") { tx in try tx.outbox.releaseLease(sink: "webhook:a", holder: "A") }
        #expect(try await s.outbox.lease(sink: "webhook:a")?.holder == "B")
        try await s.transaction("t") { tx in try tx.outbox.releaseLease(sink: "webhook:a", holder: "B") }
        #expect(try await s.outbox.lease(sink: "webhook:a") == OutboxLease(holder: nil, until: 0))
        // Concurrent takers of the free lease: exactly one holds it.
        let won = try await withThrowingTaskGroup(of: Bool.self) { g in
            for i in 0..<8 {
                g.addTask { try await s.transaction("t") { tx in try tx.outbox.takeLease(sink: "webhook:a", holder: "T\(i)", until: 1_000, now: 500) } }
            }
            return try await g.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(won == 1)
        let winner = try #require(try await s.outbox.lease(sink: "webhook:a")?.holder)
        #expect(winner.hasPrefix("T"))
    }

    /// Pruning deletes the oldest messages settled for every sink named (at or below each floor)
    /// and written before the cutoff, with their delivery rows; never one a sink has not had, nor
    /// any when a named sink is unregistered; `limit` bounds one call; seqs are never reused.
    static func outboxPruneDeletesOnlyWhatEverySinkHasHad(_ s: any StateStore) async throws {
        _ = try await s.transaction("t") { tx in [try tx.outbox.registerSink("webhook:a"), try tx.outbox.registerSink("email")] }
        let seqs = try await s.transaction("t") { tx in
            try (0..<6).map { i in try tx.outbox.enqueue(requestID: "r-\(i % 2)", event: "filed", payload: .object([:]), at: Int64(10 + i)) }
        }
        // webhook:a had the first four, email the first two; seq 3 failed at email (not delivered).
        try await s.transaction("t") { tx in
            try tx.outbox.delivered(sink: "webhook:a", seqs: Array(seqs[0..<4]), at: 30)
            try tx.outbox.setFloor(sink: "webhook:a", seq: seqs[3])
            try tx.outbox.delivered(sink: "email", seqs: Array(seqs[0..<2]), at: 30)
            try tx.outbox.deliveryFailed(sink: "email", seq: seqs[2], attempts: 1, nextAttemptAt: 99, error: "down")
            try tx.outbox.setFloor(sink: "email", seq: seqs[1])
        }
        // A sink that is not registered: nothing is pruned.
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a", "webhook:gone"], before: 1_000, limit: 100) } == 0)
        // Only messages written before the cutoff: seq 0 (at 10), not seq 1 (at 11).
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a", "email"], before: 11, limit: 100) } == 1)
        #expect(try await s.outbox.messages(after: 0, limit: 100).map(\.seq) == Array(seqs[1...]))
        #expect(try await s.outbox.deliveries(seq: seqs[0]).isEmpty)
        // Settled for both sinks: only up to email's floor (seq 1); seq 2 failed at email and stays.
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a", "email"], before: 1_000, limit: 100) } == 1)
        #expect(try await s.outbox.messages(after: 0, limit: 100).map(\.seq) == Array(seqs[2...]))
        #expect(try await s.outbox.pending(sink: "email", after: 0, limit: 100).first?.lastError == "down")
        // For webhook:a alone: up to its floor (seq 3), `limit` at a time.
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a"], before: 1_000, limit: 1) } == 1)
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a"], before: 1_000, limit: 100) } == 1)
        #expect(try await s.transaction("t") { tx in try tx.outbox.prune(sinks: ["webhook:a"], before: 1_000, limit: 100) } == 0)
        #expect(try await s.outbox.messages(after: 0, limit: 100).map(\.seq) == Array(seqs[4...]))
        #expect(try await s.outbox.deliveries(seq: seqs[3]).isEmpty)
        // A new message after pruning gets a new seq.
        let next = try await s.transaction("t") { tx in try tx.outbox.enqueue(requestID: nil, event: "filed", payload: .object([:]), at: 50) }
        #expect(next > seqs[5])
    }
}

import Foundation
import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheSQLite
import LetheTesting

extension Lethe {
    /// The same lake over another state store (e.g. a `FaultInjectingStateStore` around this one's).
    func over(_ meta: any StateStore) -> Lethe {
        Lethe(config: config, store: store, meta: meta, secrets: secrets, stateFolder: stateFolder, logger: logger, now: now)
    }
}

// MARK: The issue's test

@Test func transitionAndAuditLandTogetherOrNotAtAll() async throws {
    let f = try Fixture()
    f.put("raw/a.jsonl", #"{"user":{"id":"u-1"}}"# + "\n")
    _ = try await f.lethe.index()
    let r = try await f.lethe.forget([SubjectID("u-1")], reason: "ticket 1", by: "alice")[0]
    #expect(r.status == .planned)
    let faulty = FaultInjectingStateStore(base: f.lethe.meta)
    let lethe = f.lethe.over(faulty)

    faulty.failAuditAppend()
    await #expect(throws: LetheError.self) { _ = try await lethe.approve([r.id], by: "bob") }
    #expect(faulty.faultsThrown == 1)
    #expect(try await f.lethe.request(r.id).status == .planned)
    #expect(try await f.lethe.meta.auditEntries().filter { $0.requestID == r.id }.map(\.event) == ["filed", "planned"])

    faulty.heal()
    let approved = try await lethe.approve([r.id], by: "bob")[0]
    #expect(approved.status == .approved)
    #expect(try await f.lethe.request(r.id).status == .approved)
    #expect(try await f.lethe.meta.auditEntries().filter { $0.requestID == r.id }.map(\.event) == ["filed", "planned", "approved"])
    #expect(try await f.lethe.checkAudit().ok)
}

/// The wrapper itself: only the armed append fails, the ones before it pass.
@Test func faultInjectingStateStoreFailsExactlyTheNthAuditAppend() async throws {
    let faulty = FaultInjectingStateStore(base: try SQLiteStateStore(inMemory: nil))
    faulty.failAuditAppend(nth: 3)
    for i in 0..<2 {
        _ = try await faulty.transaction("t") { tx in try tx.appendAudit(event: .filed, requestID: "r-\(i)", actor: nil, details: "{}", at: 1) }
    }
    await #expect(throws: LetheError.self) {
        try await faulty.transaction("t") { tx in
            try tx.setSetting("x", "1")
            _ = try tx.appendAudit(event: .filed, requestID: "r-2", actor: nil, details: "{}", at: 1)
        }
    }
    #expect(try await faulty.setting("x") == nil)  // rolled back with the failed append
    _ = try await faulty.appendAudit(event: .filed, requestID: "r-3", actor: nil, details: "{}", at: 1)
    #expect(try await faulty.auditEntries().compactMap(\.requestID) == ["r-0", "r-1", "r-3"])
}

import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheStream

/// The stream filter against the engine's own request lifecycle.
@Test func approvalReachesARunningFilterWithoutRestart() async throws {
    let f = try Fixture()
    let lethe = f.lethe
    let source: @Sendable (Int64) async throws -> DeletionChanges = { try await lethe.meta.deletionTags(since: $0) }
    let shared = SharedDeletionSet()
    try await shared.load(from: source)
    let filter = StreamFilter(fields: [FieldPath("user.id")], streamKey: lethe.secrets.streamHasher, set: shared)
    let input = Array(#"{"user":{"id":"u-1"}}"#.utf8 + [0x0A] + #"{"user":{"id":"u-2"}}"#.utf8 + [0x0A])

    let filed = try await lethe.forget([SubjectID("u-1"), SubjectID("u-2")], reason: "t", by: "alice")
    #expect(filed[0].streamTag == lethe.secrets.streamTag(SubjectID("u-1")))
    #expect(try await lethe.meta.request(id: filed[0].id)?.streamTag == filed[0].streamTag)
    // Filed and planned: not yet filtered.
    #expect(try await shared.refresh(from: source) == false)
    #expect(try filter.filter(input) == input)

    _ = try await lethe.approve([filed[0].id], by: "bob")
    #expect(try await shared.refresh(from: source) == true)
    #expect(try filter.filter(input) == Array(#"{"user":{"id":"u-2"}}"#.utf8 + [0x0A]))

    // Rejected while only planned: never filtered.
    _ = try await lethe.reject(filed[1].id, by: "bob", reason: "no")
    #expect(try filter.filter(input) == Array(#"{"user":{"id":"u-2"}}"#.utf8 + [0x0A]))
    // Rejected after approval: filtered no longer.
    _ = try await lethe.reject(filed[0].id, by: "carol", reason: "withdrawn")
    #expect(try await shared.refresh(from: source) == true)
    #expect(try filter.filter(input) == input)

    // The full feed agrees.
    let all = try await lethe.meta.deletionTags(since: Int64.min)
    #expect(all.added.isEmpty)
}

@Test func aRejectedDuplicateDoesNotRemoveAForgottenSubject() async throws {
    let f = try Fixture()
    let lethe = f.lethe
    let r1 = try await lethe.forget([SubjectID("u-9")], reason: "t", by: "alice")[0]
    _ = try await lethe.reject(r1.id, by: "bob", reason: "dup")
    let r2 = try await lethe.forget([SubjectID("u-9")], reason: "t", by: "alice")[0]
    #expect(r2.id != r1.id)
    _ = try await lethe.approve([r2.id], by: "bob")
    let ch = try await lethe.meta.deletionTags(since: Int64.min)
    #expect(ch.added == [lethe.secrets.streamTag(SubjectID("u-9"))])
    #expect(ch.removed.isEmpty)
}

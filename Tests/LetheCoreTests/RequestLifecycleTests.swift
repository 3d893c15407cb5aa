import Testing
@testable import LetheCore

private let key = SubjectKey(bytes: Array(repeating: 7, count: 32))
private func fresh() -> ErasureRequest {
    ErasureRequest(id: "r1", subjectKey: key, sealedSubject: [1, 2, 3], reason: "gdpr", requestedBy: "alice", at: 1)
}
private func step(_ r: ErasureRequest, _ e: RequestEvent) throws -> ErasureRequest {
    try RequestLifecycle.apply(e, to: r).get()
}

@Test func happyPathReachesVerifiedAndKeepsTheSealedSubjectUntilSwept() throws {
    var r = fresh()
    r = try step(r, .planned(plan: [1]))
    #expect(r.status == .planned)
    r = try step(r, .approve(by: "bob", at: 2))
    #expect(r.status == .approved && r.decidedBy == "bob")
    r = try step(r, .start(at: 3))
    #expect(r.status == .running && r.attempts == 1)
    r = try step(r, .erased(at: 4))
    #expect(r.sealedSubject != nil)
    r = try step(r, .verified(result: [9], at: 5, proof: "index"))
    #expect(r.status == .verified && r.proof == "index")
    // Verified no longer destroys the raw id: the sweep (or the deadline) does.
    #expect(r.sealedSubject == [1, 2, 3] && r.rawDestroyedAt == nil)
    #expect(r.verification == [9])
    r = try step(r, .swept(at: 6))
    #expect(r.status == .verified && r.sweptAt == 6)
    #expect(r.sealedSubject == nil && r.rawDestroyedAt == 6 && r.rawDestroyedWhy == "swept")
}

@Test func aVerificationWithoutAProofKindIsAFullOne() throws {
    var r = fresh()
    for e in [RequestEvent.planned(plan: [1]), .approve(by: "bob", at: 2), .start(at: 3), .erased(at: 4), .verified(result: [9], at: 5)] {
        r = try step(r, e)
    }
    #expect(r.proof == "full" && r.sealedSubject != nil)
}

@Test func aSweepFindingFailsAVerifiedRequestAndKeepsItsRawID() throws {
    var r = fresh()
    for e in [RequestEvent.planned(plan: [1]), .approve(by: "bob", at: 2), .start(at: 3), .erased(at: 4), .verified(result: [9], at: 5)] {
        r = try step(r, e)
    }
    r = try step(r, .sweepFound(reason: "records in raw/x.jsonl", findings: [7], at: 6))
    #expect(r.status == .failed && r.failure == "records in raw/x.jsonl" && r.sweepFindings == [7])
    #expect(r.sealedSubject == [1, 2, 3] && r.sweptAt == nil)
    // Only a verified request is swept, or found by a sweep.
    #expect(throws: LetheError.self) { try step(r, .swept(at: 7)) }
    #expect(throws: LetheError.self) { try step(r, .sweepFound(reason: "x", findings: [], at: 7)) }
    // The retry runs and verifies it again; the findings are cleared by the next verification.
    r = try step(r, .retry(at: 8))
    r = try step(r, .start(at: 9))
    r = try step(r, .erased(at: 10))
    r = try step(r, .verified(result: [1], at: 11, proof: "index"))
    #expect(r.sweepFindings == nil && r.status == .verified)
}

@Test func theRawIDIsDestroyedAtAnyStatusButRunningOnce() throws {
    var r = try step(fresh(), .planned(plan: [1]))
    let d = try step(r, .destroyRawID(at: 5, why: "deadline"))
    #expect(d.status == .planned && d.sealedSubject == nil && d.rawDestroyedAt == 5 && d.rawDestroyedWhy == "deadline")
    // Idempotent: the first time and reason stay.
    let again = try step(d, .destroyRawID(at: 9, why: "swept"))
    #expect(again.rawDestroyedAt == 5 && again.rawDestroyedWhy == "deadline")
    r = try step(r, .approve(by: "bob", at: 2))
    r = try step(r, .start(at: 3))
    #expect(throws: LetheError.self) { try step(r, .destroyRawID(at: 5, why: "deadline")) }
    r = try step(r, .erased(at: 4))
    #expect(try step(r, .destroyRawID(at: 5, why: "deadline")).sealedSubject == nil)
}

@Test func theRawIDDeadlineCountsFromFiling() throws {
    var r = fresh()
    r.rawDueAt = 100
    #expect(!r.rawIDExpired(now: 99) && r.rawIDExpired(now: 100))
    r.sealedSubject = nil
    #expect(!r.rawIDExpired(now: 100))
}

@Test func requesterCannotApproveOwnRequest() throws {
    let r = try step(fresh(), .planned(plan: []))
    let result = RequestLifecycle.apply(.approve(by: "alice", at: 2), to: r)
    guard case .failure(let e) = result else { Issue.record("self-approval allowed"); return }
    #expect(e.code == .forbidden)
    #expect(e.message.contains("four eyes"))
}

@Test func rejectionIsTerminalAndDropsSealedSubject() throws {
    var r = try step(fresh(), .planned(plan: []))
    r = try step(r, .reject(by: "bob", reason: "not verified", at: 2))
    #expect(r.status == .rejected && r.sealedSubject == nil && r.decisionReason == "not verified")
    #expect(r.rawDestroyedAt == 2 && r.rawDestroyedWhy == "rejected")
    #expect(r.status.isTerminal)
    for e: RequestEvent in [.approve(by: "carol", at: 3), .start(at: 3), .erased(at: 3), .retry(at: 3)] {
        if case .success = RequestLifecycle.apply(e, to: r) { Issue.record("\(e) allowed after rejection") }
    }
}

@Test func failureThenRetryRunsAgain() throws {
    var r = try step(fresh(), .planned(plan: []))
    r = try step(r, .approve(by: "bob", at: 2))
    r = try step(r, .start(at: 3))
    r = try step(r, .fail(reason: "object corrupt", at: 4))
    #expect(r.status == .failed && r.failure == "object corrupt")
    #expect(r.status.isForgotten)
    r = try step(r, .retry(at: 5))
    #expect(r.status == .approved)
    r = try step(r, .start(at: 6))
    #expect(r.attempts == 2 && r.failure == nil)
}

@Test func verificationWithResidueFailsTheRequestAndKeepsTheSubject() throws {
    var r = try step(fresh(), .planned(plan: []))
    r = try step(r, .approve(by: "bob", at: 2))
    r = try step(r, .start(at: 3))
    r = try step(r, .erased(at: 4))
    r = try step(r, .verificationFailed(result: [1], reason: "residue in raw/x.jsonl", at: 5))
    #expect(r.status == .failed && r.sealedSubject != nil)
}

@Test(arguments: RequestStatus.allCases)
func cannotRunUnlessApproved(status: RequestStatus) {
    var r = fresh()
    r.status = status
    let ok: Bool
    if case .success = RequestLifecycle.apply(.start(at: 1), to: r) { ok = true } else { ok = false }
    #expect(ok == (status == .approved || status == .running))
}

@Test func forgottenFromApprovalOn() {
    #expect(!RequestStatus.planned.isForgotten)
    #expect(RequestStatus.approved.isForgotten)
    #expect(!RequestStatus.rejected.isForgotten)
}

@Test(arguments: RequestStatus.allCases)
func onlyARunningRequestIsRequeuedAndItKeepsItsAttempts(status: RequestStatus) throws {
    var r = fresh()
    r.status = status
    r.attempts = 2
    let result = RequestLifecycle.apply(.requeue(plan: [7], at: 9), to: r)
    switch result {
    case .success(let n):
        #expect(status == .running)
        #expect(n.status == .approved && n.plan == [7] && n.attempts == 2 && n.updatedAt == 9 && n.sealedSubject == r.sealedSubject)
    case .failure(let e):
        #expect(status != .running)
        #expect(e.code == .conflict)
    }
}

@Test func aFailedRequestCanBeClosedByARejection() throws {
    var r = try step(fresh(), .planned(plan: []))
    r = try step(r, .approve(by: "bob", at: 2))
    r = try step(r, .start(at: 3))
    r = try step(r, .fail(reason: "no object was examined", at: 4))
    r = try step(r, .reject(by: "carol", reason: "the lake never held this subject", at: 5))
    #expect(r.status == .rejected && r.sealedSubject == nil)
}

@Test func anErasedRequestWhoseVerificationWasCutShortCanFailOrBeVerified() throws {
    var r = try step(fresh(), .planned(plan: []))
    r = try step(r, .approve(by: "bob", at: 2))
    r = try step(r, .start(at: 3))
    r = try step(r, .erased(at: 4))
    #expect(try step(r, .fail(reason: "verification interrupted", at: 5)).status == .failed)
    #expect(try step(r, .verified(result: [1], at: 5)).status == .verified)
    if case .success = RequestLifecycle.apply(.start(at: 5), to: r) { Issue.record("an erased request started again") }
}

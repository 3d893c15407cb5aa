import Testing
@testable import LetheCore

private let key = SubjectKey(bytes: Array(repeating: 7, count: 32))
private func fresh() -> ErasureRequest {
    ErasureRequest(id: "r1", subjectKey: key, sealedSubject: [1, 2, 3], reason: "gdpr", requestedBy: "alice", at: 1)
}
private func step(_ r: ErasureRequest, _ e: RequestEvent) throws -> ErasureRequest {
    try RequestLifecycle.apply(e, to: r).get()
}

@Test func happyPathReachesVerifiedAndDestroysTheSealedSubject() throws {
    var r = fresh()
    r = try step(r, .planned(plan: [1]))
    #expect(r.status == .planned)
    r = try step(r, .approve(by: "bob", at: 2))
    #expect(r.status == .approved && r.decidedBy == "bob")
    r = try step(r, .start(at: 3))
    #expect(r.status == .running && r.attempts == 1)
    r = try step(r, .erased(at: 4))
    #expect(r.sealedSubject != nil)
    r = try step(r, .verified(result: [9], at: 5))
    #expect(r.status == .verified)
    #expect(r.sealedSubject == nil)
    #expect(r.verification == [9])
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

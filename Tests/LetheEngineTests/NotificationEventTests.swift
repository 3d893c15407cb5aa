import Testing
import LetheCore
import LetheRuntime
@testable import LetheEngine

/// Which request changes are notification events, and what a failure says (pure: no I/O).
@Suite struct NotificationEventTests {
    @Test(
        arguments: [
            (nil, RequestStatus.filed, ["filed"]),
            (nil, .planned, ["filed", "planned"]),
            (.filed, .planned, ["planned"]),
            (.planned, .approved, ["approved"]),
            (.failed, .approved, []),  // a retry
            (.running, .approved, []),  // taken back
            (.approved, .running, []),
            (.planned, .rejected, ["rejected"]),
            (.failed, .rejected, ["rejected"]),
            (.running, .erased, ["erased"]),
            (.erased, .verified, ["verified"]),
            (.failed, .verified, ["verified"]),
            (.verified, .verified, []),  // verified again
            (.running, .failed, ["failed"]),
            (.verified, .failed, ["failed"]),
            (.failed, .failed, []),
        ] as [(RequestStatus?, RequestStatus, [String])])
    func events(_ old: RequestStatus?, _ new: RequestStatus, _ expected: [String]) {
        #expect(Lethe.notificationEvents(from: old, to: new) == expected)
    }

    @Test func aFailureSaysItsCodeNeverItsText() {
        let key = SubjectKey(bytes: [UInt8](repeating: 7, count: 32))
        var r = ErasureRequest(id: "r-1", subjectKey: key, sealedSubject: nil, reason: "t", requestedBy: "alice", at: 1)
        r.status = .running
        var failed = r
        failed.status = .failed
        failed.failure = "object raw/u-42/part-0.json: cannot rewrite"
        let notes = Lethe.notifications(from: r, to: failed)
        #expect(notes.map(\.event) == ["failed"])
        #expect(notes[0].payload["reason"]?["code"]?.string == "erasure_failed")
        #expect(!notes[0].payload.text.contains("u-42"))
        var verified = r
        verified.status = .verified
        #expect(Lethe.notifications(from: verified, to: failed)[0].payload["reason"]?["code"]?.string == "residue_found")
        var erased = r
        erased.status = .erased
        var badVerdict = failed
        badVerdict.verification = [1]
        #expect(Lethe.notifications(from: erased, to: badVerdict)[0].payload["reason"]?["code"]?.string == "verification_failed")
        #expect(Lethe.notifications(from: erased, to: failed)[0].payload["reason"]?["code"]?.string == "interrupted")
    }

    @Test func backoffDoublesToItsCapWithJitterInTheUpperHalf() {
        let b = OutboxDispatcher.Backoff()
        #expect(b.delay(afterAttempts: 1, random: 0) == 500 && b.delay(afterAttempts: 1, random: 1) == 1_000)
        #expect(b.delay(afterAttempts: 2, random: 1) == 2_000 && b.delay(afterAttempts: 3, random: 0) == 2_000)
        #expect(b.delay(afterAttempts: 11, random: 1) == 600_000 && b.delay(afterAttempts: 80, random: 0) == 300_000)
    }
}

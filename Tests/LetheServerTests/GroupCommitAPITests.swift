import Foundation
import Hummingbird
import HummingbirdTesting
import LetheCatalog
import LetheCore
import LetheEngine
import LetheServer
import ServiceLifecycle
import Synchronization
import Testing

/// Group commit of `POST /v1/requests` (issue 14's load goals): many concurrent filings through the
/// API, each answered with its own request, all audited; a bad filing among them fails alone; a stop of
/// the server in the middle of a batch loses nothing that was answered.
@Suite(.timeLimit(.minutes(10))) struct GroupCommitAPITests {
    /// The first request id of a filing's answer.
    static func id(_ r: Reply) -> String? {
        guard case .object(let o)? = r.json, case .array(let rs)? = o["requests"], case .object(let first)? = rs.first,
            case .string(let id)? = first["id"]
        else { return nil }
        return id
    }

    @Test func concurrentFilingsAreFiledTogetherEachAnsweredAndAudited() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester)
        let api = f.api()
        try await f.app(api).test(.router) { client in
            let replies = try await withThrowingTaskGroup(of: (Int, Reply).self) { tasks in
                for i in 0..<120 {
                    tasks.addTask {
                        // Filing 60's reason holds its subject's id: refused (400), it alone.
                        let body =
                            i == 60
                            ? #"{"subjects":["bad-subject-60"],"reason":"about bad-subject-60"}"#
                            : #"{"subjects":["c-\#(i)"],"reason":"ticket \#(i)"}"#
                        return (i, try await client.call(.post, "/v1/requests", token: alice, body: body))
                    }
                }
                var out: [Int: Reply] = [:]
                for try await (i, r) in tasks { out[i] = r }
                return out
            }
            #expect(replies.count == 120)
            #expect(replies[60]?.status == 400 && replies[60]?.errorCode == "bad_request")
            var ids = Set<String>()
            for (i, r) in replies where i != 60 {
                #expect(r.status == 201, "filing \(i): \(r.status) \(r.text)")
                if let id = Self.id(r) { ids.insert(id) }
            }
            #expect(ids.count == 119, "119 distinct request ids")
            let counts = api.filings.counts
            #expect(counts.calls == 120 && counts.largest > 1, "filings were written together (\(counts))")
            // Each request stored as its caller filed it, with its own `filed` and `planned` entries.
            for id in ids {
                let r = try await f.lethe.request(id)
                #expect(r.status == .planned && r.requestedBy == "alice")
                #expect(try await f.lethe.meta.audit.entries(requestID: id).map(\.event) == ["filed", "planned"])
            }
            let bad = try await f.lethe.meta.requests.openRequests(subjectKeys: [f.lethe.key(for: f.lethe.subject("bad-subject-60"))])
            #expect(bad.isEmpty, "the refused filing filed nothing")
            #expect(try await f.lethe.checkAudit().ok)
            // The API lists exactly them.
            let bob = try await f.token("bob", .approver)
            let listed = try await client.call(.get, "/v1/requests?limit=1000", token: bob)
            guard case .object(let o)? = listed.json, case .array(let rs)? = o["requests"] else {
                Issue.record("listing: \(listed.text)")
                return
            }
            var listedIDs = Set<String>()
            for case .object(let r) in rs {
                if case .string(let id)? = r["id"] { listedIDs.insert(id) }
            }
            #expect(listedIDs == ids)
        }
    }

    /// The server is told to stop while a batch of filings is being written: the batch finishes, every
    /// filing answered 201 is in the state with its audit entries, and nothing is filed twice.
    @Test func noAnsweredFilingIsLostWhenTheServerStopsMidBatch() async throws {
        let f = try await ServerFixture()
        defer { f.remove() }
        let alice = try await f.token("alice", .requester)
        var serve = ServeConfig()
        serve.port = 0
        var api = f.api(serve: serve)
        let port = Mutex(0)
        let groupBox = Mutex<ServiceGroup?>(nil), filingsBox = Mutex<FilingGroup?>(nil)
        let stoppedAt = Mutex<Int?>(nil)
        // The first batch waits until five more filings wait behind it, then the stop is asked for and
        // the batch goes on while it takes effect; the filings waiting are filed during the stop.
        api.filings = FilingGroup(lethe: f.lethe) { calls in
            let first = stoppedAt.withLock { s -> Bool in
                if s != nil { return false }
                s = calls
                return true
            }
            guard first, let filings = filingsBox.withLock({ $0 }), let group = groupBox.withLock({ $0 }) else { return }
            // Five behind it, or all that can still come: under a loaded full run the first batch may
            // already hold more than 35 of the 40 filings, and waiting for five then outlasted curl's
            // own time limit (every call failed, none answered).
            let behind = min(5, 40 - calls)
            let deadline = ContinuousClock.now + .seconds(60)  // a hang guard, well inside curl's 120 s
            while filings.waiting < behind && ContinuousClock.now < deadline { try? await Task.sleep(nanoseconds: 5_000_000) }
            await group.triggerGracefulShutdown()
            try? await Task.sleep(nanoseconds: 300_000_000)
        }
        filingsBox.withLock { $0 = api.filings }
        let group = ServeTests.group(try LetheServe.services(api, watch: nil, onRunning: { p in port.withLock { $0 = p } }))
        groupBox.withLock { $0 = group }
        let running = Task { try await group.run() }
        while port.withLock({ $0 }) == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        let base = "http://127.0.0.1:\(port.withLock { $0 })"
        let outcomes = try await withThrowingTaskGroup(of: (Int, String, Int32).self) { tasks in
            for i in 0..<40 {
                tasks.addTask {
                    let r = try await ServeTests.curl([
                        "-X", "POST", "-H", "Authorization: Bearer \(alice)", "-H", "Content-Type: application/json",
                        "--data", #"{"subjects":["s-\#(i)"],"reason":"ticket \#(i)"}"#, base + "/v1/requests",
                    ])
                    return (i, r.out, r.status)
                }
            }
            var out: [(Int, String, Int32)] = []
            for try await o in tasks { out.append(o) }
            return out
        }
        try await running.value
        #expect(stoppedAt.withLock { $0 } != nil, "the stop came in the middle of a batch")
        var answered: [String: Int] = [:]
        for (i, out, status) in outcomes where status == 0 {
            if let id = out.firstMatch(of: /"id":"([a-z0-9-]+)"/)?.1 { answered[String(id)] = i }
        }
        #expect(answered.count >= 6, "the batch under way and the five waiting behind it were answered (\(answered.count))")
        // Every answered filing is in the state, planned and audited; nothing filed twice.
        let stored = try await f.lethe.requests(status: nil)
        #expect(Set(stored.map(\.id)).isSuperset(of: answered.keys))
        #expect(Set(stored.map(\.subjectKey)).count == stored.count)
        for (id, _) in answered {
            #expect(try await f.lethe.request(id).status == .planned)
            #expect(try await f.lethe.meta.audit.entries(requestID: id).map(\.event) == ["filed", "planned"])
        }
        #expect(try await f.lethe.checkAudit().ok)
    }
}

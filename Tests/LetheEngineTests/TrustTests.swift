import Testing
import Foundation
@testable import LetheEngine
import LetheCore
import LetheStorage
import LetheCatalog

// Issue 9 item 1 (proof means proof), item 8 (nothing stuck), and the dataset-level
// problems convention (issue 10 item 15): a request is `verified` only when every dataset
// that may hold its subject was examined and every object in it read.

private func event(_ u: String, _ n: Int) -> String { userEvent(u, n) }

private let twoDatasets = rawAndOtherDatasets

/// A filed and approved request for one subject.
private func approved(_ f: Fixture, _ subject: String) async throws -> ErasureRequest {
    let r = try await f.lethe.forget([SubjectID(subject)], reason: "t", by: "alice")[0]
    return try await f.lethe.approve([r.id], by: "bob")[0]
}

/// A Delta table at `path` whose only commit is `protocol` and a one-column schema.
private func deltaLog(_ f: Fixture, _ path: String, minReaderVersion: Int) {
    let schema = #"{\"type\":\"struct\",\"fields\":[{\"name\":\"user_id\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}]}"#
    f.put(
        path + "/_delta_log/00000000000000000000.json",
        #"{"protocol":{"minReaderVersion":\#(minReaderVersion),"minWriterVersion":7}}"# + "\n"
            + #"{"metaData":{"id":"t","format":{"provider":"parquet","options":{}},"schemaString":"\#(schema)","partitionColumns":[],"configuration":{},"createdTime":0}}"#
            + "\n")
}

@Test func aSubjectWhoseOnlyRowsSitInAQuarantinedObjectIsNeverVerified() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/good.jsonl", event("u-2", 1))
    f.put("raw/bad.jsonl", event("u-1", 1) + "{not json\n")  // u-1's only row, in an object that cannot be read
    f.put("other/o.jsonl", #"{"uid":"u-3"}"# + "\n")
    let ir = try await f.lethe.index()
    #expect(ir.quarantined.map(\.object) == ["raw/bad.jsonl"])
    let r = try await approved(f, "u-1")
    let plan = try #require(ErasurePlan.decode(r.plan!))
    // The index found u-1 nowhere, but `raw` cannot be vouched for: it is in the plan.
    #expect(plan.datasets.map(\.name) == ["raw"])
    #expect(plan.datasets[0].role == "may_hold" && plan.datasets[0].state == "partial")
    #expect(plan.datasets[0].objects.map(\.state) == ["unreadable"])
    let run = try await f.lethe.run()
    #expect(run.failed.map(\.id) == [r.id])
    #expect(run.failed.first?.reason.contains("raw/bad.jsonl") == true, "\(run.failed)")
    #expect(run.verifications.isEmpty)
    let after = try await f.lethe.request(r.id)
    #expect(after.status == .failed && after.sealedSubject != nil)
}

@Test func zeroObjectsExaminedIsAFailureNeverClean() async throws {
    let f = try Fixture(twoDatasets)
    _ = try await f.lethe.index()  // an empty lake: nothing indexed, nothing to read
    let r = try await approved(f, "u-1")
    let run = try await f.lethe.run()
    #expect(run.verifications.count == 1)
    let v = try #require(run.verifications.first)
    #expect(!v.clean && v.objectsScanned == 0)
    #expect(v.problems?.first?.contains("no object was examined") == true, "\(v)")
    #expect(try await f.lethe.request(r.id).status == .failed)
}

@Test func aSubjectTheIndexFindsNowhereIsProvenAbsentByReadingEveryDataset() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-2", 1) + event("u-3", 2))
    f.put("other/o.jsonl", #"{"uid":"u-4"}"# + "\n")
    _ = try await f.lethe.index()
    let r = try await approved(f, "u-1")
    #expect(try #require(ErasurePlan.decode(r.plan!)).datasets.isEmpty)
    let run = try await f.lethe.run()
    let v = try #require(run.verifications.first)
    // A run proves it at index cost: both objects are unchanged since they were indexed, without the subject.
    #expect(v.clean && v.datasets == ["raw", "other"] && v.proof == "index" && v.objectsListed == 2 && v.objectsUnchanged == 2, "\(v)")
    #expect(v.objectsScanned == 0 && v.bytesRead == 0, "\(v)")
    #expect(try await f.lethe.request(r.id).status == .verified)
    // `lethe verify ID` reads every dataset.
    let full = try #require(try await f.lethe.verify(ids: [r.id]).first)
    #expect(full.clean && full.proof == "full" && full.datasets == ["raw", "other"] && full.objectsScanned == 2 && full.recordsScanned == 3, "\(full)")
}

@Test func aDatasetWithoutItsSubjectColumnFailsTheRequest() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("other/o.jsonl", #"{"user":"u-1"}"# + "\n")  // no `uid`: the subject column is missing
    let ir = try await f.lethe.index()
    #expect(ir.quarantined.first?.issue.contains("no subject field `uid`") == true)
    let r = try await approved(f, "u-1")
    let run = try await f.lethe.run()
    #expect(try await f.text("raw/a.jsonl") == event("u-2", 2))  // erased where it could be
    #expect(run.failed.map(\.id) == [r.id])
    #expect(run.failed.first?.reason.contains("no subject field `uid`") == true, "\(run.failed)")
    #expect(try await f.lethe.request(r.id).status == .failed)
}

@Test func aSubjectValueThatCannotBeMatchedFailsTheRequest() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-1", 1))
    f.put("other/o.jsonl", #"{"uid":{"nested":"u-1"}}"# + "\n")  // a value Lethe cannot key
    _ = try await f.lethe.index()
    let r = try await approved(f, "u-1")
    let run = try await f.lethe.run()
    #expect(run.failed.map(\.id) == [r.id])
    #expect(run.failed.first?.reason.contains("holds an object") == true, "\(run.failed)")
}

@Test func anObjectQuarantinedAsUnsupportedMakesForgetRefuseByName() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-1", 1))
    _ = try await f.lethe.index()
    // What a format reports for data it refuses by name (e.g. a subject inside a list).
    try await f.lethe.meta.quarantine(
        IndexedObject(
            dataset: "other", key: "other/list.parquet", size: 1, modifiedNanos: 1, version: "v",
            records: 0, status: .quarantined, issue: "subject inside a list", issueCode: "unsupported", indexedAt: 1))
    do {
        _ = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")
        Issue.record("a request reaching unsupported data was filed")
    } catch let e as LetheError {
        #expect(e.code == .unsupported)
        #expect(e.message.contains("dataset `other`"), "\(e)")
    }
    #expect(try await f.lethe.meta.requests(status: nil).isEmpty)
    #expect(try await f.lethe.meta.auditEntries().isEmpty)
}

@Test func anUnsupportedDatasetIsRecordedAtIndexAndForgetRefusesByNameFilingNothing() async throws {
    let yaml = twoDatasets + "\n  - name: tbl\n    path: tbl\n    format: delta\n    subject: user_id\n"
    let f = try Fixture(yaml)
    f.put("raw/a.jsonl", event("u-1", 1))
    f.put("other/o.jsonl", #"{"uid":"u-3"}"# + "\n")
    deltaLog(f, "tbl", minReaderVersion: 4)
    let ir = try await f.lethe.index()
    #expect(ir.objectsScanned == 2)  // the other datasets are indexed
    #expect(ir.datasetIssues.map(\.dataset) == ["tbl"])
    #expect(ir.datasetIssues.first?.kind == .unsupported)
    #expect(ir.datasetIssues.first?.message.contains("reader version 4") == true)
    #expect(try await f.lethe.locate(SubjectID("u-1")).count == 1)
    do {
        _ = try await f.lethe.forget([SubjectID("u-1")], reason: "t", by: "alice")
        Issue.record("a request reaching an unsupported dataset was filed")
    } catch let e as LetheError {
        #expect(e.code == .unsupported)
        #expect(e.message.contains("dataset `tbl` is unsupported") && e.message.contains("reader version 4"), "\(e)")
    }
    #expect(try await f.lethe.meta.requests(status: nil).isEmpty)
}

@Test func anUnreadableDatasetFailsTheRequestsReachingItAndTheRestOfTheWorkProceeds() async throws {
    let yaml = twoDatasets + "\n  - name: tbl\n    path: tbl\n    format: delta\n    subject: user_id\n"
    let f = try Fixture(yaml)
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("other/o.jsonl", #"{"uid":"u-3"}"# + "\n")
    f.put("tbl/_delta_log/00000000000000000000.json", "{broken\n")
    let ir = try await f.lethe.index()
    #expect(ir.objectsScanned == 2)
    #expect(ir.datasetIssues.map(\.dataset) == ["tbl"] && ir.datasetIssues.first?.kind == .unreadable)
    #expect(try await f.lethe.datasetIssues()["tbl"]?.kind == .unreadable)
    let r = try await approved(f, "u-1")
    let plan = try #require(ErasurePlan.decode(r.plan!))
    #expect(plan.datasets.map(\.name) == ["raw", "tbl"])
    #expect(plan.datasets.last?.state == "unreadable" && plan.datasets.last?.role == "may_hold")
    let run = try await f.lethe.run()
    #expect(try await f.text("raw/a.jsonl") == event("u-2", 2))  // erased where it can be
    #expect(run.datasetIssues.map(\.dataset) == ["tbl"])
    #expect(run.failed.map(\.id) == [r.id])
    #expect(run.failed.first?.reason.contains("dataset `tbl` is unreadable") == true, "\(run.failed)")
    #expect(try await f.lethe.request(r.id).status == .failed)
    // Mended, the next run indexes it, clears the issue and finishes the request.
    deltaLog(f, "tbl", minReaderVersion: 1)
    let again = try await f.lethe.run()
    #expect(again.failed.isEmpty && again.datasetIssues.isEmpty, "\(again.failed)")
    #expect(try await f.lethe.request(r.id).status == .verified)
    #expect(try await f.lethe.datasetIssues().isEmpty)
}

@Test func aVerificationThatCannotReadADatasetIsNotClean() async throws {
    let yaml = twoDatasets + "\n  - name: tbl\n    path: tbl\n    format: delta\n    subject: user_id\n    derived_from: [raw]\n"
    let f = try Fixture(yaml)
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("other/o.jsonl", #"{"uid":"u-3"}"# + "\n")
    deltaLog(f, "tbl", minReaderVersion: 1)
    _ = try await f.lethe.index()
    let r = try await approved(f, "u-1")
    _ = try await f.lethe.run()
    #expect(try await f.lethe.request(r.id).status == .verified)
    // The table breaks after indexing: a new verification cannot read it.
    f.put("tbl/_delta_log/00000000000000000001.json", "{broken\n")
    var erased = try await f.lethe.request(r.id)
    erased.status = .erased
    try await f.lethe.meta.updateRequest(erased, expecting: .verified)
    let v = try await f.lethe.verify(ids: [r.id])
    #expect(!v[0].clean)
    #expect(v[0].problems?.first?.contains("dataset `tbl` could not be read") == true, "\(v[0])")
}

@Test func aStepThatKeepsDyingFailsItsRequestsInsteadOfLeavingThemRunning() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("other/o.jsonl", #"{"uid":"u-3"}"# + "\n")
    _ = try await f.lethe.index()
    let r = try await approved(f, "u-1")
    // A job whose object step was started three times and died each time (a crash in it).
    let running = try RequestLifecycle.apply(.start(at: 1), to: r).get()
    try await f.lethe.meta.updateRequest(running, expecting: .approved)
    try await f.lethe.meta.createJob([
        JournalStep(job: "j-1", ordinal: 0, dataset: "raw", objectKey: "raw/a.jsonl", requestIDs: [r.id], subjectKeys: [r.subjectKey]),
        JournalStep(job: "j-1", ordinal: 1, dataset: "", objectKey: "", requestIDs: [r.id], subjectKeys: [r.subjectKey]),
    ])
    for _ in 0..<Lethe.maxStepAttempts { _ = try await f.lethe.meta.beginStep(job: "j-1", ordinal: 0) }
    let run = try await f.lethe.run()
    #expect(run.failed.first?.id == r.id)
    #expect(run.failed.first?.reason.contains("started 3 times and never finished") == true, "\(run.failed)")
    #expect(try await f.text("raw/a.jsonl") == event("u-1", 1) + event("u-2", 2))  // the step did not run again
    #expect(try await f.lethe.request(r.id).status == .failed)
    #expect(try await f.lethe.meta.pendingSteps().isEmpty)
    // Retried by the next run (a new job), it completes.
    let again = try await f.lethe.run()
    #expect(again.failed.isEmpty)
    #expect(try await f.lethe.request(r.id).status == .verified)
}

// h6: `lethe verify ID` read only the datasets of the request's plan (made when it was filed or run) and the ones
// the index cannot vouch for. A subject that came back in another dataset (a stream re-inserting them) was
// certified "clean" there, even once `lethe index` had indexed the new object and `locate` showed it.
@Test func verifyReadsTheDatasetsWhereTheIndexFindsTheSubjectNowNotOnlyThePlans() async throws {
    let f = try Fixture(twoDatasets)
    f.put("raw/a.jsonl", event("u-1", 1) + event("u-2", 2))
    f.put("other/o.jsonl", #"{"uid":"u-2"}"# + "\n")
    _ = try await f.lethe.index()
    let r = try await approved(f, "u-1")
    _ = try await f.lethe.run()
    #expect(try await f.lethe.request(r.id).status == .verified)
    f.put("other/new.jsonl", #"{"uid":"u-1"}"# + "\n")  // the subject comes back where the plan never looked
    _ = try await f.lethe.index()
    #expect(try await f.lethe.locate(SubjectID("u-1")).map(\.object.key) == ["other/new.jsonl"])
    let v = try await f.lethe.verify(ids: [r.id])
    #expect(v.count == 1 && !v[0].clean, "\(v)")
    #expect(v.first?.found.map(\.object) == ["other/new.jsonl"], "\(v)")
}

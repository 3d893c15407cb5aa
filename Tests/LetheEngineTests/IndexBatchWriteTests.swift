import Foundation
import LetheCore
import LetheTesting
import Testing

@testable import LetheEngine

/// The index writes a full batch while the next one is scanned (one write in flight, see
/// `Indexer.Batch`). A write that fails behind the scan (the first batch's) or at its end (the last
/// batch's, awaited once the scan is done) fails `index`; what committed is the batches before it;
/// the next `index` indexes the rest.
@Test(arguments: [1, 2]) func aBatchWriteThatFailsBehindTheScanFailsTheIndex(nth: Int) async throws {
    let f = try Fixture()
    // 300 objects: a batch of 256 (written while the last 44 are scanned), then one of 44.
    for i in 0..<300 { f.put("raw/o\(String(1000 + i).dropFirst()).jsonl", #"{"user":{"id":"u-\#(i)"}}"# + "\n") }
    let faulty = FaultInjectingStateStore(base: f.lethe.meta)
    faulty.failIndexWrite(nth: nth)
    do {
        _ = try await f.lethe.over(faulty).index(workers: 1)
        Issue.record("index succeeded though its batch write \(nth) failed")
    } catch let e as LetheError {
        #expect(e.message.contains("injected fault: index write"), "\(e)")
    }
    #expect(faulty.faultsThrown == 1)
    // Batches commit in order: the first one when only the second failed, none otherwise.
    #expect(try await f.lethe.locate(SubjectID("u-0")).isEmpty == (nth == 1))
    #expect(try await f.lethe.locate(SubjectID("u-255")).isEmpty == (nth == 1))
    #expect(try await f.lethe.locate(SubjectID("u-256")).isEmpty)
    #expect(try await f.lethe.locate(SubjectID("u-299")).isEmpty)

    let again = try await f.lethe.index(workers: 1)
    // (A pass that failed recorded no fingerprint of the dataset's spec: the next one scans it all again.)
    #expect(again.objectsSeen == 300 && again.quarantined.isEmpty)
    for i in [0, 255, 256, 299] { #expect(try await f.lethe.locate(SubjectID("u-\(i)")).count == 1, "u-\(i)") }
}

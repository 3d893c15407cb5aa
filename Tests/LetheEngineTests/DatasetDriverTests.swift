import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheFormats
import LetheStorage
import LetheSQLite

@Suite struct DatasetDriverTests {
    static let yaml = """
        lake: ./lake
        datasets:
          - name: j
            path: j
            format: jsonl
            subject: id
          - name: c
            path: c
            format: csv
            subject: id
          - name: p
            path: p
            format: parquet
            subject: id
          - name: t
            path: t
            format: delta
            subject: id
        """

    @Test func driversAreChosenByFormat() throws {
        let config = try LakeConfig.parse(Self.yaml, file: "lethe.yaml", baseDir: "/tmp")
        for d in config.datasets {
            let driver = DatasetDrivers.driver(for: d)
            let delta = d.name == "t"
            #expect((driver is DeltaDatasetDriver) == delta)
            #expect((driver is ObjectDatasetDriver) == !delta)
            #expect(driver.hasTransactionLog == delta && driver.erasesInOneCommit == delta)
            #expect(driver.formatName == (delta ? "parquet" : d.format.rawValue))
            // Plain datasets read Hive-style folders for subject parts; a Delta table's come from its log.
            let o = driver.baseOptions(FormatOptions(subject: d.subject!))
            if case .hive(let prefix) = o.partitions { #expect(!delta && prefix == d.path) } else { #expect(delta) }
        }
    }

    @Test func aStepRunsWithTheDriverThatPlannedIt() throws {
        let config = try LakeConfig.parse(Self.yaml, file: "lethe.yaml", baseDir: "/tmp")
        let t = config.dataset(named: "t")!, j = config.dataset(named: "j")!
        let table = JournalStep(job: "j-1", ordinal: 0, dataset: "t", objectKey: Lethe.deltaStepKey, requestIDs: ["r"], subjectKeys: [])
        let object = JournalStep(job: "j-1", ordinal: 1, dataset: "j", objectKey: "j/a.jsonl", requestIDs: ["r"], subjectKeys: [])
        #expect(DatasetDrivers.driver(for: table, t) is DeltaDatasetDriver)
        #expect(DatasetDrivers.driver(for: object, j) is ObjectDatasetDriver)
    }

    /// A plain dataset is listed page after page: every object on every page, hidden-by-name files
    /// apart, nothing outside its path.
    @Test func objectDriverListsEveryPage() async throws {
        let store = InMemoryObjectStore(pageSize: 2)
        let config = try LakeConfig.parse(Self.yaml, file: "lethe.yaml", baseDir: "/tmp")
        let lethe = Lethe(
            config: config, store: store, meta: try SQLiteStateStore(inMemory: nil),
            secrets: StateSecrets(installationSecret: Array(repeating: 3, count: 32), requestKey: Array(repeating: 4, count: 32)),
            stateFolder: nil)
        let records = (0..<5).map { "j/part-\($0).jsonl" }
        for k in records { try await store.put(k, Array(#"{"id":"u-1"}"#.utf8) + [10]) }
        for k in ["j/_SUCCESS", "j/.part-0.jsonl.crc", "jj/other.jsonl", "c/a.csv"] { try await store.put(k, Array("x\n".utf8)) }
        let driver = ObjectDatasetDriver(spec: config.dataset(named: "j")!)
        let objects = try await driver.objects(lethe)
        #expect(objects.objects.map(\.key) == records)
        #expect(objects.hidden.map(\.key) == ["j/.part-0.jsonl.crc", "j/_SUCCESS"])
        #expect(try await driver.indexListing(lethe).objects.map(\.key) == records)
        let report = try await lethe.index(datasets: ["j"])
        #expect(report.objectsScanned == 5 && report.records == 5)
    }

    /// The steps each driver lays out for a job: one per object (and per quarantined object) for a plain
    /// dataset; one for a whole Delta table, with each request once, sorted.
    @Test func driversPlanTheirSteps() throws {
        let config = try LakeConfig.parse(Self.yaml, file: "lethe.yaml", baseDir: "/tmp")
        func request(_ id: String) -> ErasureRequest {
            ErasureRequest(id: id, subjectKey: SubjectKey(bytes: Array(repeating: 1, count: 32)), sealedSubject: nil, reason: "t", requestedBy: "a", at: 1)
        }
        func object(_ key: String) -> IndexedObject {
            IndexedObject(dataset: "x", key: key, size: 1, modifiedNanos: 1, version: "v", records: 1, status: .quarantined, indexedAt: 1)
        }
        func shape(_ steps: [(key: String, requests: [ErasureRequest])]) -> [String] {
            steps.map { "\($0.key)|\($0.requests.map(\.id).joined(separator: ","))" }
        }
        let (r1, r2, r3) = (request("r-1"), request("r-2"), request("r-3"))
        let holders = ["j/b.jsonl": [r2], "j/a.jsonl": [r1, r2]]
        let plain = DatasetDrivers.driver(for: config.dataset(named: "j")!)
        #expect(
            shape(plain.planSteps(holders: holders, inScope: [r1, r2, r3], quarantined: [object("j/c.jsonl")]))
                == ["j/a.jsonl|r-1,r-2", "j/b.jsonl|r-2", "j/c.jsonl|r-1,r-2,r-3"])
        #expect(shape(plain.planSteps(holders: nil, inScope: [r1], quarantined: [])) == [])
        let table = DatasetDrivers.driver(for: config.dataset(named: "t")!)
        #expect(
            shape(table.planSteps(holders: ["t/p-1.parquet": [r2], "t/p-0.parquet": [r2, r1]], inScope: [r1, r2, r3], quarantined: []))
                == ["\(JournalStep.deltaTableKey)|r-1,r-2"])
        #expect(shape(table.planSteps(holders: nil, inScope: [r3], quarantined: [object("t/q.parquet")])) == ["t/q.parquet|r-3"])
    }
}

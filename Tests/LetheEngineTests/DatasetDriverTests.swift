import Testing
@testable import LetheEngine
import LetheCore
import LetheCatalog
import LetheFormats

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
}

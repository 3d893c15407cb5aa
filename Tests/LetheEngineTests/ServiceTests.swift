import Foundation
import Synchronization
import Testing
import Logging
import ServiceLifecycle
import LetheCore
import LetheStorage
import LetheCatalog
import LetheStream
import LetheEngine
import LetheRuntime
import LetheSQLite

/// The long-running doors as services: each stops on a graceful shutdown of its group after
/// finishing what it was doing (no signals here: the group is shut down by the test; a service that
/// does not stop fails by the time limit).
@Suite(.timeLimit(.minutes(10))) struct ServiceTests {
    static let secrets = StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32))

    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "lethe-services-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func group(_ services: [ServiceGroupConfiguration.ServiceConfiguration]) -> ServiceGroup {
        var quiet = Logger(label: "test")
        quiet.logLevel = .critical
        return ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: quiet))
    }

    /// Waits (without a deadline of its own: the test runner's) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        while !condition() { try await Task.sleep(nanoseconds: 10_000_000) }
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func streamFilterFollowsAGrowingFileUntilGracefulShutdown() async throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (inPath, outPath) = (dir + "/in.jsonl", dir + "/out.jsonl")
        try "{\"u\":\"a\"}\n{\"u\":\"gone\"}\n".write(toFile: inPath, atomically: false, encoding: .utf8)
        let set = SharedDeletionSet(DeletionSet(tags: [Self.secrets.streamTag(SubjectID("gone"))]))
        let inFD = open(inPath, O_RDONLY), outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(inFD); close(outFD) }
        let filter = StreamFilterService(
            .init(
                fields: [FieldPath("u")], streamKey: Self.secrets.streamHasher, onMalformed: .fail,
                validation: .full, input: inFD, output: outFD, follow: true), set: set)
        let group = Self.group([.init(service: filter, successTerminationBehavior: .gracefullyShutdownGroup)])
        let running = Task { try await group.run() }
        try await Self.eventually { Self.lines(outPath) == ["{\"u\":\"a\"}"] }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: inPath))
        h.seekToEndOfFile()
        h.write(Data("{\"u\":\"gone\"}\n{\"u\":\"b\"}".utf8))  // the last line has no LF: filtered when stopping
        try h.close()
        // The stop is seen only at an idle moment, after a read: what was appended before it is filtered.
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(filter.counts.passed == 2 && filter.counts.dropped == 2)
        #expect(Self.lines(outPath) == ["{\"u\":\"a\"}", "{\"u\":\"b\"}"])
    }

    @Test func streamFilterThrowsTheMalformedLineAndKeepsItsCounts() async throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"u\":\"a\"}\n{\"u\":\n{\"u\":\"c\"}\n".write(toFile: dir + "/in.jsonl", atomically: false, encoding: .utf8)
        let inFD = open(dir + "/in.jsonl", O_RDONLY), outFD = open("/dev/null", O_WRONLY)
        defer { close(inFD); close(outFD) }
        let filter = StreamFilterService(
            .init(
                fields: [FieldPath("u")], streamKey: Self.secrets.streamHasher, onMalformed: .fail,
                validation: .full, input: inFD, output: outFD, follow: false), set: SharedDeletionSet())
        let group = Self.group([.init(service: filter, successTerminationBehavior: .gracefullyShutdownGroup)])
        await #expect(throws: MalformedLine.self) { try await group.run() }
        #expect(filter.counts.passed == 1 && filter.counts.malformed == 1)
    }

    @Test func deletionSetRefresherPicksUpNewTagsAndStopsOnShutdown() async throws {
        let tag = Self.secrets.streamTag(SubjectID("late"))
        let published = Atomic<Bool>(false)
        let set = SharedDeletionSet()
        let refresher = DeletionSetRefresher(
            set: set, interval: 0.01,
            source: { _ in
                DeletionChanges(added: published.load(ordering: .relaxed) ? [tag] : [], removed: [], latest: 1)
            }, onError: { _ in })
        let group = Self.group([.init(service: refresher, successTerminationBehavior: .gracefullyShutdownGroup)])
        let running = Task { try await group.run() }
        #expect(!set.current.contains(tag))
        published.store(true, ordering: .relaxed)
        try await Self.eventually { set.current.contains(tag) }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func indexWatchFinishesItsPassesAndStopsOnShutdown() async throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/ev", withIntermediateDirectories: true)
        try "{\"id\":\"u-1\"}\n".write(toFile: dir + "/ev/a.jsonl", atomically: false, encoding: .utf8)
        let yaml = "lake: .\ndatasets:\n  - {name: ev, path: ev, format: jsonl, subject: id}\n"
        let lethe = Lethe(
            config: try LakeConfig.parse(yaml, file: "lethe.yaml", baseDir: dir), store: LocalObjectStore(root: dir),
            meta: try SQLiteStateStore(inMemory: nil), secrets: Self.secrets, stateFolder: nil)
        let passes = Mutex<[IndexReport]>([])
        let watch = IndexWatchService(lethe: lethe, datasets: nil, interval: 0.01) { r in passes.withLock { $0.append(r) } }
        let group = Self.group([.init(service: watch, successTerminationBehavior: .gracefullyShutdownGroup)])
        let running = Task { try await group.run() }
        try await Self.eventually { passes.withLock { $0.count } >= 2 }
        // Written whole (temp + rename): a pass never sees it half-written.
        let before = passes.withLock { $0.count }
        try "{\"id\":\"u-2\"}\n".write(toFile: dir + "/ev/b.jsonl", atomically: true, encoding: .utf8)
        // A pass after the write scanned the new object (any of them: passes run every 10 ms, faster
        // than a poll under load, so the last one may already be a pass with nothing new).
        try await Self.eventually { passes.withLock { $0.dropFirst(before).contains { $0.objectsScanned == 1 && $0.objectsSeen == 2 } } }
        await group.triggerGracefulShutdown()
        try await running.value
        let seen = passes.withLock { $0 }
        #expect(seen.first?.objectsScanned == 1 && seen.allSatisfy { $0.datasets == ["ev"] })
        #expect(try await lethe.locate(lethe.subject("u-2")).count == 1)
    }
}

import Foundation
import Synchronization
import Testing
import LetheCore
@testable import LetheStorage

#if canImport(Glibc)
    import Glibc
#endif

// Issue 12: deferred writes past the page cache (`O_DIRECT`) while it is measured slow.

private func tempRoot(under base: String = NSTemporaryDirectory()) -> String {
    let d = (base.hasSuffix("/") ? base : base + "/") + "lethe-direct-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

private func bytes(_ n: Int, seed: Int) -> [UInt8] {
    (0..<n).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2_654_435_761 >> 7) }
}

/// A store writing every deferred write direct, with a gauge of its own (a refusal it remembers stays with it).
private func directStore(_ root: String) -> LocalObjectStore {
    var s = LocalObjectStore(root: root)
    s.directWrites = .always
    s.pageCache = PageCacheGauge()
    return s
}

/// Pages of the file resident in the page cache (`mincore` of a mapping of it).
private func residentPages(_ path: String) -> Int {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var st = stat()
    fstat(fd, &st)
    let size = Int(st.st_size), page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard size > 0, let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return -1 }
    defer { munmap(map, size) }
    var vec = [UInt8](repeating: 0, count: (size + page - 1) / page)
    guard mincore(map, size, &vec) == 0 else { return -1 }
    return vec.filter { $0 & 1 != 0 }.count
}

/// The type of the file system `path` is on (the longest mount point of /proc/mounts that holds it).
private func isTmpfs(_ path: String) -> Bool {
    let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
    var best = ("", "")
    for line in mounts.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count > 2 else { continue }
        let point = String(f[1])
        if (path == point || path.hasPrefix(point == "/" ? "/" : point + "/")) && point.count > best.0.count { best = (point, String(f[2])) }
    }
    return best.1 == "tmpfs"
}

/// A large deferred write goes to the file with `O_DIRECT`: its whole blocks are counted as direct
/// bytes and take no page-cache page; the last partial block is written buffered; the bytes read
/// back are those written. An immediate write is never direct.
@Test func alwaysWritesLargeDeferredWritesPastThePageCache() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let s = directStore(root)
    let data = bytes(3 << 20 + 1_000, seed: 1)
    let w = try await s.openWrite("t/big.parquet", precondition: .absent, durability: .deferred)
    try await w.write(data)
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 3 << 20)
    try await s.makeDurable([w])
    _ = try await s.commit([w])
    if !isTmpfs(root) {
        // Only the last (buffered) page is cached: the 768 direct pages never were.
        #expect(residentPages(root + "/t/big.parquet") <= 1)
    }
    #expect(try await s.read("t/big.parquet") == data)
    #expect(s.counters.directRefusals.load(ordering: .relaxed) == 0)

    let i = try await s.openWrite("t/immediate", precondition: .none)
    try await i.write(data)
    _ = try await i.commit()
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 3 << 20)
    #expect(try await s.read("t/immediate") == data)
}

/// One step of a write: bytes, or a copy of a range of the source object.
enum DirectWriteStep: Sendable, CustomStringConvertible {
    case bytes(Int)
    case copy(Int, Int)
    var description: String {
        switch self {
        case .bytes(let n): return "bytes(\(n))"
        case .copy(let a, let n): return "copy(\(a), \(n))"
        }
    }
}

/// Odd sizes, gathered small writes, runs across the 128 KiB threshold and the 1 MiB buffer, kernel
/// copies turned into reads, a commit without `makeDurable`: byte-exact, on the temporary folder
/// and on tmpfs (/dev/shm), which may accept `O_DIRECT` or refuse it.
@Test(arguments: [
    [DirectWriteStep.bytes(1)],
    [.bytes(4_095)],
    [.bytes(4_097)],
    [.bytes(131_071), .bytes(1)],
    [.bytes(131_073)],
    [.bytes(1 << 20), .bytes(1)],
    [.bytes((1 << 20) - 1), .bytes(2), .bytes(4_096)],
    [.bytes(100), .copy(7, 300_001), .bytes(5), .copy(0, 10), .bytes(70_000), .bytes(70_000), .copy(1_000, 2_500_000)],
    [.copy(4_096, 4_096), .copy(3, 131_072), .bytes(0), .bytes(2_000_123)],
])
func directWritesRoundTripOddSizes(_ steps: [DirectWriteStep]) async throws {
    var bases = [NSTemporaryDirectory()]
    if FileManager.default.fileExists(atPath: "/dev/shm") { bases.append("/dev/shm") }
    for base in bases {
        let root = tempRoot(under: base); defer { try? FileManager.default.removeItem(atPath: root) }
        let s = directStore(root)
        let source = bytes(3 << 20, seed: 7)
        let src = try await s.put("src.bin", source)
        for durable in [true, false] {
            var expected: [UInt8] = []
            let w = try await s.openWrite("t/f\(durable)", precondition: .none, durability: .deferred)
            for (k, step) in steps.enumerated() {
                switch step {
                case .bytes(let n):
                    let b = bytes(n, seed: k)
                    expected += b
                    if k % 2 == 0 {
                        try await w.write(b)
                    } else {
                        // The borrowed-buffer entry point.
                        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, n), alignment: 1)
                        defer { p.deallocate() }
                        p.copyBytes(from: b)
                        try await w.write(UnsafeRawBufferPointer(rebasing: p[0..<n]))
                    }
                case .copy(let a, let n):
                    expected += source[a..<(a + n)]
                    try await w.copyRange(from: "src.bin", version: src.version, range: Int64(a)..<Int64(a + n), in: s)
                }
            }
            if durable { try await s.makeDurable([w]) }
            _ = try await w.commit()
            let back = try await s.read("t/f\(durable)")
            #expect(back.count == expected.count, "\(base) \(steps)")
            #expect(back == expected, "\(base) \(steps)")
        }
    }
}

/// A file system that refuses `O_DIRECT` (here made to refuse with EINVAL, as ramfs does at open)
/// leaves the write buffered, byte-exact, and is remembered: the next deferred write on it is not
/// tried direct.
@Test func refusedDirectOpenFallsBackToBufferedWrites() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    var s = directStore(root)
    s.refusesDirect = .atOpen
    let data = bytes(2 << 20 + 17, seed: 3)
    let w = try await s.openWrite("t/a", precondition: .none, durability: .deferred)
    try await w.write(Array(data[0..<300_000]))
    try await w.write(Array(data[300_000...]))
    try await s.makeDurable([w])
    _ = try await w.commit()
    #expect(try await s.read("t/a") == data)
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 0)
    #expect(s.counters.directRefusals.load(ordering: .relaxed) == 1)

    // Remembered for the device: not tried again (no second refusal), still written.
    let again = try await s.openWrite("t/b", precondition: .none, durability: .deferred)
    try await again.write(data)
    _ = try await again.commit()
    #expect(try await s.read("t/b") == data)
    #expect(s.counters.directRefusals.load(ordering: .relaxed) == 1)
}

/// A refusal at a write, after direct writes went through (a file system that accepts the open but
/// not the write): the rest of the file, pending bytes included, is written buffered at its offsets
/// and later writes and kernel copies append after it.
@Test func refusedDirectWriteMidFileFallsBackAtTheRightOffset() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    var s = directStore(root)
    s.refusesDirect = .atWrite(afterBytes: 1 << 20)
    let source = bytes(1 << 20, seed: 9)
    let src = try await s.put("src.bin", source)
    let data = bytes(2 << 20 + 5, seed: 4)
    let w = try await s.openWrite("t/a", precondition: .none, durability: .deferred)
    try await w.write(Array(data[0..<((1 << 20) + 10)]))  // one direct buffer, 10 bytes pending
    try await w.write(Array(data[((1 << 20) + 10)...]))  // refused: buffered from 1 MiB on
    try await w.copyRange(from: "src.bin", version: src.version, range: 100..<200_100, in: s)
    try await w.write(Array("end".utf8))
    _ = try await w.commit()
    #expect(try await s.read("t/a") == data + source[100..<200_100] + Array("end".utf8))
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 1 << 20)
    #expect(s.counters.directRefusals.load(ordering: .relaxed) == 1)
}

/// A clock that moves by `step` nanoseconds at each reading.
private final class SteppingClock: Sendable {
    let now = Atomic<Int64>(0)
    let step: Int64
    init(step: Int64) { self.step = step }
    func read() -> Int64 { now.add(step, ordering: .relaxed).newValue }
}

/// The default policy: buffered writes are timed; once a sample costs more than the threshold per page
/// (a CPU clock made slow here), new deferred writes go direct for `slowFor`, then are measured
/// again. A fast page cache keeps them buffered.
@Test func aSlowPageCacheMeasureSendsDeferredWritesDirect() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    let wall = SteppingClock(step: 0)
    // 4 ms of CPU per measured write of 512 KiB (128 pages): 31 µs a page.
    let slowCPU = SteppingClock(step: 4_000_000)
    var s = LocalObjectStore(root: root)
    s.directWrites = .whenPageCacheIsSlow
    s.pageCache = PageCacheGauge(cpuClock: { slowCPU.read() }, clock: { wall.read() })
    let data = bytes(1 << 20, seed: 5)
    func writeFile(_ key: String) async throws {
        let w = try await s.openWrite(key, precondition: .none, durability: .deferred)
        try await w.write(Array(data[0..<(512 << 10)]))
        try await w.write(Array(data[(512 << 10)...]))
        try await s.makeDurable([w])
        _ = try await w.commit()
        #expect(try await s.read(key) == data)
    }
    try await writeFile("t/first")  // buffered, measured: slow
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 0)
    #expect(s.pageCache.slowVerdicts == 1)
    #expect(s.pageCache.isSlow)
    try await writeFile("t/second")  // direct
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 1 << 20)
    #expect(s.pageCache.slowVerdicts == 1)

    wall.now.add(11_000_000_000, ordering: .relaxed)  // past `slowFor`: measured again
    #expect(!s.pageCache.isSlow)
    try await writeFile("t/third")
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 1 << 20)
    #expect(s.pageCache.slowVerdicts == 2)
}

@Test func aFastPageCacheKeepsDeferredWritesBuffered() async throws {
    let root = tempRoot(); defer { try? FileManager.default.removeItem(atPath: root) }
    // 100 µs per measured write of 512 KiB: under 1 µs a page.
    let fastCPU = SteppingClock(step: 100_000)
    var s = LocalObjectStore(root: root)
    s.directWrites = .whenPageCacheIsSlow
    s.pageCache = PageCacheGauge(cpuClock: { fastCPU.read() })
    let data = bytes(1 << 20, seed: 6)
    for k in 0..<3 {
        let w = try await s.openWrite("t/f\(k)", precondition: .none, durability: .deferred)
        try await w.write(Array(data[0..<(512 << 10)]))
        try await w.write(Array(data[(512 << 10)...]))
        _ = try await w.commit()
    }
    #expect(s.pageCache.slowVerdicts == 0)
    #expect(s.pageCache.lastNanosPerPage != nil)
    #expect(s.counters.bytesWrittenDirect.load(ordering: .relaxed) == 0)
}

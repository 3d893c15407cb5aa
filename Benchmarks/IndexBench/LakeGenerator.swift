import Foundation
public import LetheCore
#if canImport(Glibc)
    import Glibc
#endif

/// Writes a deterministic JSON Lines event lake straight as bytes (no string
/// formatting per field). Each record is one ~210-byte event whose subject is
/// the nested `user.id`; decoys that must never match: `item.id`, and in one
/// record of eight a nested `ref.user.id` naming another user.
///
/// Users are skewed: a quarter of the events come from the 2% "hot" users, the
/// rest uniformly from all users, so most (subject, object) postings hold one row.
public struct LakeGenerator: Sendable {
    public var root: String  // the lake folder
    public var prefix = "raw/events"
    public var totalBytes: Int64
    public var objects: Int
    public var users: Int
    public var seed: UInt64 = 0x1E7E

    public init(root: String, totalBytes: Int64, objects: Int, users: Int) {
        self.root = root
        self.totalBytes = totalBytes
        self.objects = objects
        self.users = users
    }

    public var hotUsers: Int { max(1, users / 50) }

    /// The user id text of user `n` (`u-0001234`).
    public static func userID(_ n: Int) -> String {
        var b: [UInt8] = []
        appendUser(&b, n)
        return String(decoding: b, as: UTF8.self)
    }

    /// A user drawn from the lake's distribution.
    public func drawUser(_ rng: inout SplitMix64) -> Int {
        let r = rng.next()
        return r & 3 == 0 ? Int((r >> 2) % UInt64(hotUsers)) : Int((r >> 2) % UInt64(users))
    }

    public func key(ofObject i: Int) -> String {
        let day = i * 30 / objects + 1
        return prefix + "/dt=2026-11-" + (day < 10 ? "0" : "") + String(day) + "/part-" + pad(i, 5) + ".jsonl"
    }

    private func pad(_ n: Int, _ w: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }

    public struct Result: Sendable { public var bytes: Int64; public var records: Int64 }

    /// Writes every object (two writer tasks); returns bytes and records written.
    public func generate(workers: Int) async throws -> Result {
        let perObject = Int(totalBytes / Int64(objects)) + 1
        return try await withThrowingTaskGroup(of: Result.self) { group in
            var next = 0
            var total = Result(bytes: 0, records: 0)
            func launch() {
                guard next < objects else { return }
                let i = next
                next += 1
                group.addTask { try self.writeObject(i, targetBytes: perObject) }
            }
            for _ in 0..<max(1, workers) { launch() }
            while let r = try await group.next() {
                total.bytes += r.bytes
                total.records += r.records
                launch()
            }
            return total
        }
    }

    static let kinds: [[UInt8]] = ["page_view", "click", "add_to_cart", "purchase", "search", "login"].map { Array($0.utf8) }

    func writeObject(_ i: Int, targetBytes: Int) throws -> Result {
        var rng = SplitMix(seed: seed &+ UInt64(i) &* 0x9E37_79B9)
        var b: [UInt8] = []
        b.reserveCapacity(targetBytes + 512)
        var records: Int64 = 0
        let day = i * 30 / objects + 1
        let perDayObjects = max(1, objects / 30)
        let part = i % perDayObjects
        var second = part * 86_400 / perDayObjects
        while b.count < targetBytes {
            let u = drawUser(&rng)
            let r = rng.next()
            let item = Int(r % 100_000)
            lit(&b, #"{"ts":"2026-11-"#); digits(&b, day, 2); b.append(UInt8(ascii: "T"))
            let s = second % 86_400
            digits(&b, s / 3600, 2); b.append(UInt8(ascii: ":")); digits(&b, s / 60 % 60, 2); b.append(UInt8(ascii: ":"))
            digits(&b, s % 60, 2); lit(&b, #"Z","event":""#)
            b.append(contentsOf: Self.kinds[Int((r >> 20) % UInt64(Self.kinds.count))])
            lit(&b, #"","user":{"id":""#); Self.appendUser(&b, u)
            lit(&b, #"","email":"u"#); digits(&b, u, 7)
            lit(&b, #"@example.com"},"item":{"id":"i-"#); digits(&b, item, 6)
            lit(&b, #"","price":"#); decimal(&b, item % 500); lit(&b, ".99},\"ip\":\"10.")
            decimal(&b, Int((r >> 24) & 0xFF)); b.append(UInt8(ascii: ".")); decimal(&b, Int((r >> 32) & 0xFF))
            b.append(UInt8(ascii: ".")); decimal(&b, u & 0xFF)
            if (r >> 40) & 7 == 0 {
                // Decoy: another user's id at a nested `ref.user.id`, which is not the subject path.
                lit(&b, #"","ref":{"user":{"id":""#); Self.appendUser(&b, drawUser(&rng)); lit(&b, #""}}"#)
            } else {
                b.append(UInt8(ascii: "\""))
            }
            lit(&b, #","props":{"path":"/p/"#); decimal(&b, item); lit(&b, #"","ms":"#)
            decimal(&b, Int((r >> 44) % 900)); lit(&b, "}}\n")
            records += 1
            second += 1
        }
        let path = root + "/" + key(ofObject: i)
        try makeDirs((path as NSString).deletingLastPathComponent)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        try b.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; throw BenchError("write \(path): errno \(errno)") }
                done += n
            }
        }
        return Result(bytes: Int64(b.count), records: records)
    }

    static func appendUser(_ b: inout [UInt8], _ u: Int) {
        b.append(UInt8(ascii: "u")); b.append(UInt8(ascii: "-"))
        digits(&b, u, 7)
    }
}

@inline(__always) func lit(_ b: inout [UInt8], _ s: StaticString) {
    s.withUTF8Buffer { b.append(contentsOf: $0) }
}

/// `n` in decimal, zero-padded to `width` digits.
@inline(__always) func digits(_ b: inout [UInt8], _ n: Int, _ width: Int) {
    var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &tmp) { t in
        var v = n
        var i = 20
        repeat {
            i -= 1
            t[i] = UInt8(48 + v % 10)
            v /= 10
        } while v > 0 && i > 0
        while 20 - i < width && i > 0 { i -= 1; t[i] = 48 }
        b.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[i..<20]))
    }
}

@inline(__always) func decimal(_ b: inout [UInt8], _ n: Int) { digits(&b, n, 1) }

func makeDirs(_ dir: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
        throw BenchError("cannot create folder \(dir): \(error)")
    }
}

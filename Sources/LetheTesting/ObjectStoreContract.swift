public import LetheCore
public import LetheStorage
public import Testing

/// What every `ObjectStore` must do, as checks a test target runs against its store (local folder,
/// memory, a fault-injecting passthrough; S3 later): `@Test(arguments: ObjectStoreContract.Check.allCases)`
/// calling `ObjectStoreContract.run(check) { a fresh, empty store }`.
public enum ObjectStoreContract {
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case roundTrip
        case streamedReadYieldsTheWholeObject
        case windowsLendTheWholeObject
        case readWithStaleVersionIsAConflict
        case listingIsScopedToThePrefixInKeyOrder
        case listingPagesResumeAfterKey
        case batchDeleteRemovesEveryKeyAndIgnoresAbsentOnes
        case conditionalWritesRefuseAChangedOrPresentObject
        case abortedWriteLeavesNoTrace
        case localPathsNameTheirKeys
        public var testDescription: String { rawValue }
    }

    /// Runs `check` against the store `make` returns (empty, used by this check only). `seed`, when
    /// given, creates many objects faster than `put` (a local folder: without an `fsync` each) for
    /// the checks that only list them.
    public static func run(
        _ check: Check, seed: ((_ key: String, _ bytes: [UInt8]) throws -> Void)? = nil,
        _ make: () async throws -> any ObjectStore
    ) async throws {
        let store = try await make()
        switch check {
        case .roundTrip: try await roundTrip(store)
        case .streamedReadYieldsTheWholeObject: try await streamedReadYieldsTheWholeObject(store)
        case .windowsLendTheWholeObject: try await windowsLendTheWholeObject(store)
        case .readWithStaleVersionIsAConflict: try await readWithStaleVersionIsAConflict(store)
        case .listingIsScopedToThePrefixInKeyOrder: try await listingIsScopedToThePrefixInKeyOrder(store)
        case .listingPagesResumeAfterKey: try await listingPagesResumeAfterKey(store, seed: seed)
        case .batchDeleteRemovesEveryKeyAndIgnoresAbsentOnes: try await batchDeleteRemovesEveryKeyAndIgnoresAbsentOnes(store)
        case .conditionalWritesRefuseAChangedOrPresentObject: try await conditionalWritesRefuseAChangedOrPresentObject(store)
        case .abortedWriteLeavesNoTrace: try await abortedWriteLeavesNoTrace(store)
        case .localPathsNameTheirKeys: try await localPathsNameTheirKeys(store)
        }
    }

    /// The code of the `LetheError` `body` throws (nil when it does not throw; `.failure` for another error).
    public static func errorCode(_ body: () async throws -> Void) async -> LetheError.Code? {
        do {
            try await body()
            return nil
        } catch let e as LetheError {
            return e.code
        } catch {
            return .failure
        }
    }

    static func bytes(_ n: Int, seed: Int = 0) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }

    public static func roundTrip(_ s: any ObjectStore) async throws {
        let data = bytes(1000)
        let info = try await s.put("a/b.bin", data)
        #expect(info.key == "a/b.bin" && info.size == 1000)
        let head = try await s.head("a/b.bin")
        #expect(head?.size == 1000 && head?.version == info.version)
        #expect(try await s.read("a/b.bin") == data)
        #expect(try await s.read("a/b.bin", range: 2..<5) == Array(data[2..<5]))
        #expect(try await s.read("a/b.bin", range: 1000..<1000) == [])
        #expect(await errorCode { _ = try await s.read("a/b.bin", range: 990..<1001) } == .badInput)
        #expect(await errorCode { _ = try await s.read("a/none") } == .notFound)
        #expect(await errorCode { _ = try await s.openRead("a/none") } == .notFound)
        #expect(try await s.head("a/none") == nil)
        #expect(try await s.head("a") == nil)  // a prefix is not an object
        let again = try await s.put("a/b.bin", [7])
        #expect(again.version != info.version)
        #expect(try await s.read("a/b.bin") == [7])
        let empty = try await s.put("a/empty", [])
        #expect(empty.size == 0)
        #expect(try await s.read("a/empty") == [])
        let stream = try await s.openRead("a/empty", chunkSize: 10)
        #expect(try await stream.next() == nil)
        stream.close()
    }

    public static func streamedReadYieldsTheWholeObject(_ s: any ObjectStore) async throws {
        let data = bytes(10_000, seed: 3)
        try await s.put("x.bin", data)
        let r = try await s.openRead("x.bin", chunkSize: 333)
        var got: [UInt8] = []
        while let c = try await r.next() {
            #expect(!c.isEmpty && c.count <= 333)
            got += c
        }
        r.close()
        #expect(got == data)
    }

    /// `forEachWindow` lends every byte once consumed, in order: what a window leaves begins the next
    /// one, a window with nothing consumed is followed by a longer one, only the last says `end`; an
    /// empty object is one empty window. Objects large enough for a local store to map them (≥ 256 KiB) and small ones.
    public static func windowsLendTheWholeObject(_ s: any ObjectStore) async throws {
        for (n, window) in [(0, 100), (1_000, 333), (700_001, 65_536), (300_000, 1 << 20)] {
            let data = bytes(n, seed: n)
            try await s.put("w.bin", data)
            var got: [UInt8] = []
            var windows = 0, ends = 0
            var last = -1
            try await s.forEachWindow(of: "w.bin", window: window) { w, end in
                windows += 1
                if end { ends += 1 }
                #expect(w.count > last, "a window after one that consumed nothing is longer")
                // Leave a varying tail (every fifth window: all of it), all at the end.
                let left = end ? 0 : windows % 5 == 0 ? w.count : (windows * 7_919) % max(1, min(w.count, window / 2))
                got += w.prefix(w.count - left)
                last = left == w.count ? w.count : -1
                return left
            }
            #expect(ends == 1)
            #expect(got == data, "\(n) bytes in windows of \(window)")
        }
    }

    /// Pieces read with `ifVersion` never mix two versions; a stream either yields the version it
    /// opened or fails with `.conflict`.
    public static func readWithStaleVersionIsAConflict(_ s: any ObjectStore) async throws {
        let v1 = try await s.put("k", bytes(4000, seed: 1))
        #expect(try await s.read("k", range: 0..<10, ifVersion: v1.version) == Array(bytes(4000, seed: 1)[0..<10]))
        let stream = try await s.openRead("k", chunkSize: 1000)
        let first = try await stream.next()
        let v2 = try await s.put("k", bytes(4000, seed: 2))
        #expect(v2.version != v1.version)
        #expect(await errorCode { _ = try await s.read("k", range: 0..<10, ifVersion: v1.version) } == .conflict)
        #expect(await errorCode { _ = try await s.read("k", range: nil, ifVersion: v1.version) } == .conflict)
        #expect(try await s.read("k", range: 10..<20, ifVersion: v2.version) == Array(bytes(4000, seed: 2)[10..<20]))
        // The stream opened on v1: the rest of v1, or a conflict, never v2's bytes.
        var got = first ?? []
        let code = await errorCode { while let c = try await stream.next() { got += c } }
        stream.close()
        #expect(code == nil || code == .conflict, "\(String(describing: code))")
        if code == nil { #expect(got == bytes(4000, seed: 1)) }
        try await s.delete("k")
        #expect(await errorCode { _ = try await s.read("k", range: 0..<1, ifVersion: v2.version) } == .notFound)
    }

    public static func listingIsScopedToThePrefixInKeyOrder(_ s: any ObjectStore) async throws {
        let keys = ["p/d/b", "p/d/a/x", "p/d/a-b", "p/d/\u{e9}", "p/d/z", "p/d/Z", "p/dd/q", "p/d0", "q/x"]
        for (i, k) in keys.enumerated() { try await s.put(k, bytes(i + 1)) }
        // Key order is the UTF-8 byte order: `-` (2D) before `/` (2F), `Z` before `a`, `é` last.
        let expected = ["p/d/Z", "p/d/a-b", "p/d/a/x", "p/d/b", "p/d/z", "p/d/\u{e9}"]
        let listed = try await s.list(prefix: "p/d")
        #expect(listed.map(\.key) == expected)
        #expect(listed.map(\.size) == expected.map { Int64(keys.firstIndex(of: $0)! + 1) })
        for o in listed { #expect(try await s.head(o.key)?.version == o.version) }
        #expect(try await s.list(prefix: "p/d/").map(\.key) == expected)
        #expect(try await s.listKeys(prefix: "p/d") == expected)
        #expect(try await s.list(prefix: "p/d/b").map(\.key) == ["p/d/b"])
        #expect(try await s.list(prefix: "nope").isEmpty)
        #expect(try await s.list(prefix: "").map(\.key) == keys.sorted { keyPrecedes($0, $1) })
        #expect(try await s.list(prefix: "p/d", startAfter: "p/d/a-b").all().map(\.key) == Array(expected[2...]))
        #expect(try await s.list(prefix: "p/d", startAfter: "p/d/a").all().map(\.key) == Array(expected[1...]))
        #expect(try await s.list(prefix: "p/d", startAfter: "p/d/\u{e9}").all().isEmpty)
        #expect(try await s.list(prefix: "p/d", startAfter: "a").all().map(\.key) == expected)
        // Skipping a folder: its keys (and its sub-folders') only; a sibling that shares its name's start stays.
        #expect(try await s.list(prefix: "p/d", skippingFolder: "p/d/a/").all().map(\.key) == expected.filter { $0 != "p/d/a/x" })
        #expect(try await s.list(prefix: "", skippingFolder: "p/d/").all().map(\.key) == ["p/d0", "p/dd/q", "q/x"])
        #expect(try await s.list(prefix: "p/d", skippingFolder: "p/").all().isEmpty)
        #expect(try await s.list(prefix: "p/d", skippingFolder: "nope/").all().map(\.key) == expected)
        // A listing lists anew each time it is iterated.
        let listing = s.list(prefix: "p/dd", startAfter: nil)
        #expect(try await listing.all().map(\.key) == ["p/dd/q"])
        try await s.put("p/dd/r", [1])
        #expect(try await listing.all().map(\.key) == ["p/dd/q", "p/dd/r"])
    }

    /// 10,000 keys in ten folders: pages of at most 1,000 objects (S3's page), non-empty, in key order,
    /// together the whole listing; a listing started after any key is the rest.
    public static func listingPagesResumeAfterKey(_ s: any ObjectStore, seed: ((String, [UInt8]) throws -> Void)? = nil) async throws {
        var keys: [String] = []
        for i in 0..<10_000 { keys.append("big/\(i % 10)/k\(i)") }
        if let seed {
            for k in keys { try seed(k, []) }
        } else {
            // Sixteen writes at a time (a remote store answers each in a round trip).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, k) in keys.enumerated() {
                    if i >= 16 { try await group.next() }
                    group.addTask { try await s.put(k, []) }
                }
                try await group.waitForAll()
            }
        }
        keys.sort { keyPrecedes($0, $1) }
        var pages = 0
        var listed: [String] = []
        for try await page in s.list(prefix: "big", startAfter: nil) {
            #expect(!page.isEmpty && page.count <= 1000)
            pages += 1
            listed += page.map(\.key)
        }
        #expect(pages >= 10)
        #expect(listed == keys)
        for cut in [0, 999, 1000, 4321, 9998] {
            #expect(try await s.list(prefix: "big", startAfter: keys[cut]).all().map(\.key) == Array(keys[(cut + 1)...]), "after \(keys[cut])")
        }
        #expect(try await s.list(prefix: "big", startAfter: keys[9999]).all().isEmpty)
    }

    public static func batchDeleteRemovesEveryKeyAndIgnoresAbsentOnes(_ s: any ObjectStore) async throws {
        for k in ["a/1", "a/2", "b/3", "c/d/4"] { try await s.put(k, [1]) }
        try await s.delete(["a/1", "b/3", "missing", "c/d/4", "c/d/4"])
        #expect(try await s.list(prefix: "").map(\.key) == ["a/2"])
        try await s.delete([])
        try await s.delete("never")
        try await s.delete("a/2")
        #expect(try await s.list(prefix: "").isEmpty)
        #expect(try await s.head("a/2") == nil)
    }

    public static func conditionalWritesRefuseAChangedOrPresentObject(_ s: any ObjectStore) async throws {
        let v1 = try await s.put("o", [1])
        #expect(await errorCode { try await s.put("o", [2], precondition: .absent) } == .conflict)
        #expect(try await s.read("o") == [1])
        let w = try await s.openWrite("o", precondition: .matches(version: v1.version))
        try await w.write([3])
        let v2 = try await s.put("o", [4])
        #expect(await errorCode { _ = try await w.commit() } == .conflict)
        #expect(try await s.read("o") == [4])
        #expect(try await s.list(prefix: "").map(\.key) == ["o"])  // the refused write left nothing
        let v3 = try await s.put("o", [5], precondition: .matches(version: v2.version))
        #expect(try await s.head("o")?.version == v3.version)
        #expect(await errorCode { try await s.put("new", [6], precondition: .matches(version: v3.version)) } == .conflict)
        #expect(try await s.head("new") == nil)
        try await s.put("new", [7], precondition: .absent)
        #expect(try await s.read("new") == [7])
    }

    /// An aborted write changes nothing and leaves nothing behind (no temporary object, no upload).
    public static func abortedWriteLeavesNoTrace(_ s: any ObjectStore) async throws {
        try await s.put("d/o", [1, 2, 3])
        let before = try await s.list(prefix: "")
        let w = try await s.openWrite("d/o", precondition: .none)
        try await w.write([9, 9])
        await w.abort()
        let fresh = try await s.openWrite("d/new", precondition: .absent)
        try await fresh.write(bytes(100))
        await fresh.abort()
        await fresh.abort()  // twice is fine
        #expect(try await s.read("d/o") == [1, 2, 3])
        #expect(try await s.head("d/new") == nil)
        #expect(try await s.list(prefix: "") == before)
    }

    /// A local store names each key's path and each path under its root back as the key; any other
    /// store names none. Prefix status is `.exists`/`.missing` exactly where there are paths.
    public static func localPathsNameTheirKeys(_ s: any ObjectStore) async throws {
        try await s.put("x/y.json", [1])
        let status = try await s.prefixStatus("x"), missing = try await s.prefixStatus("nope")
        guard let path = s.localPath(of: "x/y.json") else {
            #expect(s.key(forLocalPath: "/x/y.json") == nil)
            #expect(status == .notApplicable && missing == .notApplicable)
            return
        }
        #expect(s.key(forLocalPath: path) == "x/y.json")
        if let root = s.localPath(of: "") {
            #expect(s.key(forLocalPath: root + "/x/./z/../y.json") == "x/y.json")
            #expect(s.key(forLocalPath: root) == nil)
            #expect(s.key(forLocalPath: root + "/../elsewhere/y.json") == nil)
        }
        #expect(s.key(forLocalPath: "/definitely/not/in/the/store") == nil)
        #expect(status == .exists && missing == .missing)
    }
}

import CLinux
import LetheCore
public import Synchronization
#if canImport(Glibc)
    public import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An object store over a local folder. Keys are paths relative to the root.
///
/// Writes go to a temporary file beside the target (`.<name>.lethe-tmp-<random>`),
/// are fsynced, renamed over the target, and the folder is fsynced: a crash leaves
/// the old or the new content, never a mix. Listing shows every file, temporary names
/// included: the engine journals each temporary file (`onTemporary`) before it exists,
/// removes those a killed run left, and treats any other file as data. A delete removes the
/// folders it leaves empty (below the root), so no folder named after a partition value
/// (`user_id=u-42/`) outlives the subject's last file.
///
/// What is an object (docs: README, "Files Lethe reads"):
/// - Every entry below a listed prefix that is not a folder is an object, whatever its name:
///   a name that is not UTF-8 gets a key in which each such byte is written U+FFFD followed by
///   two hex digits (a literal U+FFFD in a name likewise), so the key names exactly that file.
/// - Lethe never follows a symbolic link below the root (the root itself may be one). A link, a
///   FIFO, a socket or a device below a listed prefix is listed like a file but cannot be read: a
///   read throws `.unsupported` naming it, so indexing quarantines it and a request reaching it
///   fails instead of skipping it. A prefix that passes through a link is refused when listed.
///
/// Replacing an object keeps its mode, owner and group (a write that could not keep them fails),
/// refuses while another process holds the object open for writing (where the system can tell:
/// Linux leases), and keeps the replaced file open so that bytes a writer still appended to it
/// can be carried into the new version (`ObjectWriteStream.replacedTail`).
public struct LocalObjectStore: ObjectStore {
    public let root: String
    public var location: String { root }
    /// Called with the keys of temporary files before they are created (the engine records them,
    /// so a run killed mid-write leaves no file it does not know of): one key per `openWrite`, the
    /// keys of all the writes of an `openWrites` in one call.
    public var onTemporary: (@Sendable ([String]) async throws -> Void)?
    /// Folders (keys below the root) that `delete` never removes when it leaves them empty: the
    /// datasets' roots. An erasure that deletes a dataset's last object leaves an empty dataset,
    /// not a missing one.
    public var keptFolders: Set<String> = []

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    static let tempMarker = ".lethe-tmp-"

    /// Objects per listing page.
    public var pageSize = 1000
    /// What the store did, counted (shared by copies of the store): for tests and benchmarks.
    public let counters = LocalStoreCounters()
    /// Where the slow system calls run, in one hop per batch, off the cooperative threads: a listing
    /// page, a copy of 64 KiB or more, a commit (fsync, rename, folder fsync), a batch delete. Metadata
    /// calls and small copies (a `head`, a Delta log file, a Parquet footer) stay on the caller: the hop
    /// would cost more than they do. Nil runs everything on the calling thread.
    public var ioPool: BlockingIOPool? = .shared

    /// When `.deferred` writes bypass the page cache (`O_DIRECT`): never by default (opt-in until a
    /// quiet machine shows the gain: docs/benchmarks.md, issue 12 session 27); `LETHE_DIRECT_WRITES=slow`
    /// sends them direct while buffered writes are measured slow (`PageCacheGauge`), `always` always.
    public var directWrites: DirectWrites = DirectWrites.fromEnvironment ?? .never
    /// What `directWrites` measures and remembers (process-wide by default).
    public var pageCache: PageCacheGauge = .shared
    /// Test hook: makes the kernel's refusal of `O_DIRECT` (EINVAL) happen here, at the open of the
    /// direct descriptor or at the first direct write past some bytes, on any file system.
    var refusesDirect: DirectRefusal?
    enum DirectRefusal: Sendable { case atOpen, atWrite(afterBytes: Int64) }

    /// Runs one batch of blocking system calls on `ioPool`.
    func io<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard let ioPool else { return try body() }
        return try await ioPool.run(body)
    }

    /// Reads and writes smaller than this run on the calling thread: the hop (~10 µs) would cost more
    /// than the call (page-cache copies of a few KiB).
    static let inlineBytes = 64 << 10

    // MARK: Listing

    /// One sorted walk of the folder, depth first in key order, that yields a page at a time and
    /// skips whole folders that sort before `startAfter`.
    public func list(prefix: String, startAfter: String?) -> ObjectListing {
        ObjectListing { LocalListing(store: self, prefix: prefix, startAfter: startAfter, keysOnly: false) }
    }

    /// The walk of `list`, never opening the folder `folder` names (its files are not `stat`ed).
    public func list(prefix: String, skippingFolder folder: String) -> ObjectListing {
        ObjectListing { LocalListing(store: self, prefix: prefix, startAfter: nil, keysOnly: false, skipping: folder) }
    }

    /// Keys only: `readdir`'s entry types, a `stat` only where the file system leaves the type unknown.
    public func listKeys(prefix: String) async throws -> [String] {
        try await io {
            let walk = LocalListing(store: self, prefix: prefix, startAfter: nil, keysOnly: true)
            var out: [String] = []
            while let page = try walk.fill() { out += page.map(\.key) }
            return out
        }
    }

    /// The start of a walk below `prefix`: the folder to walk (opened, with its key prefix), or the one
    /// object `prefix` names (folder fd, name), or nothing.
    enum WalkStart {
        case nothing
        case folder(fd: Int32, keyPrefix: String)
        case object(key: String, dfd: Int32, name: [CChar])
    }

    func walkStart(_ prefix: String) throws -> WalkStart {
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        if p.isEmpty {
            guard let fd = try openRoot() else { return .nothing }
            return .folder(fd: fd, keyPrefix: "")
        }
        guard let parent = try openParent(p, create: false) else { return .nothing }
        var st = stat()
        guard fstatat(parent.fd, parent.name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            let e = errno
            close(parent.fd)
            if e == ENOENT || e == ENOTDIR { return .nothing }
            throw LetheError.io("cannot stat", at: p, errno: e)
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            let fd = openat(parent.fd, parent.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let e = errno
            close(parent.fd)
            guard fd >= 0 else { throw LetheError.io("cannot open folder", at: p, errno: e) }
            return .folder(fd: fd, keyPrefix: p + "/")
        case S_IFREG:
            return .object(key: p, dfd: parent.fd, name: parent.name)
        default:
            defer { close(parent.fd) }
            throw Self.notFollowed(p, st, parent.fd, parent.name, what: "the path")
        }
    }

    /// The entries of the folder open at `fd` (taking ownership of it), sorted in key order: a
    /// folder sorts as its name followed by `/`, as its keys do.
    /// `startAfter`: a listing's start key; entries that can hold no key after it (a file at or before it, a
    /// folder whose keys all sort before it) are left out here, unsorted and without a `String`: the tail of
    /// a 5,000-commit Delta log after its checkpoint is listed this way several times a run.
    func folderEntries(_ fd: Int32, keyPrefix: String, startAfter: String? = nil) throws -> (
        dir: OpaquePointer, names: [CChar], entries: [LocalListing.Entry]
    ) {
        guard let d = fdopendir(fd) else {
            let e = errno
            close(fd)
            throw LetheError.io("cannot list folder", at: keyPrefix.isEmpty ? root : String(keyPrefix.dropLast()), errno: e)
        }
        // Every name (with its NUL) back to back, and every entry's sort key (its key component's
        // bytes, then `/` for a folder) back to back: a folder of thousands of files (a Delta table)
        // is listed several times a run, so no array per entry and no reference counting in the sort.
        var names: [CChar] = []
        var keys: [UInt8] = []
        var keyAt: [Int] = [0]
        var entries: [LocalListing.Entry] = []
        // The start key past this folder's prefix (only when it lies in the folder; else every entry is kept).
        let after: [UInt8]? = startAfter.flatMap { a in a.utf8.starts(with: keyPrefix.utf8) ? Array(a.utf8.dropFirst(keyPrefix.utf8.count)) : nil }
        while let e = readdir(d) {
            withUnsafeBytes(of: e.pointee.d_name) { raw in
                let cname = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                let n = strnlen(cname, raw.count)
                let bytes = UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n)
                if n <= 2 && bytes.allSatisfy({ $0 == 0x2E }) { return }  // `.` and `..` (names are never empty)
                var type = e.pointee.d_type
                if type == UInt8(DT_UNKNOWN) {
                    var st = stat()
                    guard fstatat(dirfd(d), cname, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
                    type = (st.st_mode & S_IFMT) == S_IFDIR ? UInt8(DT_DIR) : (st.st_mode & S_IFMT) == S_IFREG ? UInt8(DT_REG) : UInt8(DT_LNK)
                }
                let ascii = !bytes.contains(where: { $0 >= 0x80 })
                let isDir = type == UInt8(DT_DIR)
                if ascii, let after, !after.withUnsafeBufferPointer({ Self.mayFollow(bytes, isDir: isDir, after: $0) }) { return }
                let component = ascii ? String(decoding: bytes, as: UTF8.self) : Self.keyComponent(Array(bytes))
                if !ascii, let after {
                    var c = component
                    let keep = c.withUTF8 { u in after.withUnsafeBufferPointer { Self.mayFollow(u, isDir: isDir, after: $0) } }
                    if !keep { return }
                }
                entries.append(LocalListing.Entry(nameAt: names.count, component: component, isDir: isDir))
                names.append(contentsOf: UnsafeBufferPointer(start: cname, count: n))
                names.append(0)
                if ascii { keys.append(contentsOf: bytes) } else { keys.append(contentsOf: component.utf8) }
                if isDir { keys.append(0x2F) }
                keyAt.append(keys.count)
            }
        }
        // Sorted by index, comparing the keys' bytes in place.
        var order = Array(entries.indices)
        keys.withUnsafeBufferPointer { k in
            keyAt.withUnsafeBufferPointer { at in
                let base = k.baseAddress
                order.sort { i, j in
                    let x = at[i], xn = at[i + 1] - x, y = at[j], yn = at[j + 1] - y
                    let n = min(xn, yn)
                    let c = n == 0 ? 0 : memcmp(base! + x, base! + y, n)
                    return c < 0 || (c == 0 && xn < yn)
                }
            }
        }
        return (d, names, order.map { entries[$0] })
    }

    /// Whether an entry whose key component is `s` (a folder's sorts as `s/`) may hold a key after the start
    /// key whose part past the folder's prefix is `r`: a file when its key sorts after it, a folder unless
    /// every key in it sorts before (its name with `/` sorts before and does not begin the start key).
    static func mayFollow(_ s: UnsafeBufferPointer<UInt8>, isDir: Bool, after r: UnsafeBufferPointer<UInt8>) -> Bool {
        let sl = s.count + (isDir ? 1 : 0)
        var i = 0
        while i < sl && i < r.count {
            let a = i < s.count ? s[i] : 0x2F
            if a != r[i] { return a > r[i] }
            i += 1
        }
        if sl > r.count { return true }  // the start key is a proper prefix: the entry sorts after it
        return isDir  // the entry's key (or folder) begins the start key: a file is at or before it; a folder may hold later keys
    }

    static func info(key: String, _ st: stat) -> ObjectInfo {
        #if canImport(Darwin)
            let ns = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
            let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        return ObjectInfo(key: key, size: Int64(st.st_size), modifiedNanos: ns, version: version(size: Int64(st.st_size), nanos: ns, inode: UInt64(st.st_ino)))
    }

    /// An object's version on a local store: `size-mtime_ns-inode` in decimal (what `"\(size)-\(ns)-\(ino)"`
    /// writes), digit by digit: every object of a listing gets one.
    static func version(size: Int64, nanos: Int64, inode: UInt64) -> String {
        String(unsafeUninitializedCapacity: 64) { buf in
            var i = 0
            func put(_ negative: Bool, _ magnitude: UInt64) {
                if negative {
                    buf[i] = UInt8(ascii: "-")
                    i += 1
                }
                var digits = 1, m = magnitude
                while m >= 10 {
                    m /= 10
                    digits += 1
                }
                var v = magnitude, j = i + digits
                repeat {
                    j -= 1
                    buf[j] = 48 &+ UInt8(truncatingIfNeeded: v % 10)
                    v /= 10
                } while j > i
                i += digits
            }
            put(size < 0, size.magnitude)
            buf[i] = UInt8(ascii: "-")
            i += 1
            put(nanos < 0, nanos.magnitude)
            buf[i] = UInt8(ascii: "-")
            i += 1
            put(false, inode)
            return i
        }
    }

    // MARK: Reading

    public func head(_ key: String) async throws -> ObjectInfo? {
        guard let parent = try openParent(key, create: false) else { return nil }
        defer { close(parent.fd) }
        var st = stat()
        guard fstatat(parent.fd, parent.name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { return nil }
        return Self.info(key: key, st)
    }

    /// A large range is read in one hop (open, fstat, pread, close); a whole object is opened here and
    /// copied on the pool only when it is large.
    public func read(_ key: String, range: Range<Int64>?, ifVersion: String?) async throws -> [UInt8] {
        if let r = range {
            if r.count < Self.inlineBytes { return try readNow(key, range: r, ifVersion: ifVersion) }
            return try await io { try readNow(key, range: r, ifVersion: ifVersion) }
        }
        let fd = try openFile(key)
        let size: Int64
        do {
            size = try checkVersion(fd, key, ifVersion)
        } catch {
            close(fd)
            throw error
        }
        if size < Self.inlineBytes {
            defer { close(fd) }
            return try Self.preadAll(fd, key, 0..<size, size: size)
        }
        return try await io {
            defer { close(fd) }
            return try Self.preadAll(fd, key, 0..<size, size: size)
        }
    }

    /// One read: open, check the version, `pread` the range, close.
    func readNow(_ key: String, range: Range<Int64>?, ifVersion: String?) throws -> [UInt8] {
        let fd = try openFile(key)
        defer { close(fd) }
        let size = try checkVersion(fd, key, ifVersion)
        return try Self.preadAll(fd, key, range ?? 0..<size, size: size)
    }

    /// The open file's size, after checking that it is at `ifVersion` (when given).
    private func checkVersion(_ fd: Int32, _ key: String, _ ifVersion: String?) throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LetheError.io("cannot stat", at: key, errno: errno) }
        if let ifVersion {
            let now = Self.info(key: key, st).version
            if now != ifVersion {
                throw LetheError(.conflict, "object changed since it was read (expected version \(ifVersion), found \(now))", at: key)
            }
        }
        return Int64(st.st_size)
    }

    /// The bytes in `r` of the open file of `size` bytes.
    private static func preadAll(_ fd: Int32, _ key: String, _ r: Range<Int64>, size: Int64) throws -> [UInt8] {
        guard r.lowerBound >= 0, r.upperBound <= size else {
            throw LetheError(.badInput, "range \(r.lowerBound)..<\(r.upperBound) is past the end (\(size) bytes)", at: key)
        }
        // Into uninitialized memory (every byte is read or the call throws).
        return try [UInt8](unsafeUninitializedCapacity: Int(r.count)) { buf, count in
            var done = 0
            while done < buf.count {
                let n = pread(fd, buf.baseAddress! + done, buf.count - done, off_t(r.lowerBound) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: key, errno: errno) }
                if n == 0 { throw LetheError(.io, "file shrank while reading", at: key) }
                done += n
            }
            count = done
        }
    }

    /// Kept over the default (ranged reads): the stream reads one open file, so a replace of the
    /// object while it is read (a rename over it) can neither mix two versions nor fail the read, and
    /// each chunk is one `read` without walking the path again.
    /// The first chunk is read at open: on the caller for a small object, in one hop for a large one.
    public func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream {
        let stream = LocalReadStream(fd: try openFile(key), key: key, chunkSize: max(1, chunkSize), store: self)
        if stream.prefetchIsSmall() {
            try stream.prefetch()
        } else {
            try await io { try stream.prefetch() }
        }
        return stream
    }

    /// Objects from this size on are lent mapped by `forEachWindow` (smaller ones are read: a mapping costs
    /// more than their copy).
    static let mapBytes = 256 << 10
    /// Whether `forEachWindow` maps large objects (false: it reads them, as the default does; benchmarks compare).
    public var mapsObjects = true

    /// Lends the object mapped (`mmap`, `MADV_SEQUENTIAL`, and `MADV_WILLNEED` on the window after the
    /// one lent, so the kernel reads it while the caller works on this one): no copy. A mapped file that
    /// shrinks would fault the process (SIGBUS) at the next byte read past its new end, so the map is
    /// used only under a read lease (`F_SETLEASE`): another process's `truncate` or open for writing
    /// then waits until the lease is released (at most `/proc/sys/fs/lease-break-time`, 45 s by
    /// default), and the lease is checked before each window: once its break has begun, the rest is
    /// read with `pread` from the open file (a file that shrank is then an error, as for `read`). A
    /// replace by rename (how Lethe and most writers replace objects) does not touch the mapped file.
    /// Smaller objects, files that cannot be leased (open for writing now, another owner without
    /// `CAP_LEASE`, a file system without leases) and other systems read as the default does.
    public func forEachWindow(
        of key: String, window: Int, _ body: (UnsafeBufferPointer<UInt8>, _ end: Bool) throws -> Int
    ) async throws {
        #if os(Linux)
            let fd = try openFile(key)
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw LetheError.io("cannot stat", at: key, errno: errno) }
            guard mapsObjects, Int(st.st_size) >= Self.mapBytes, let lease = MappedRead(fd: fd) else {
                return try await forEachWindowByReading(of: key, window: window, body)
            }
            defer { lease.release() }
            // The size under the lease (a truncation before it was taken).
            guard fstat(fd, &st) == 0 else { throw LetheError.io("cannot stat", at: key, errno: errno) }
            let size = Int(st.st_size)
            guard size > 0, let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
                return try await forEachWindowByReading(of: key, window: window, body)
            }
            defer { munmap(map, size) }
            _ = madvise(map, size, MADV_SEQUENTIAL)
            counters.mappedReads.add(1, ordering: .relaxed)
            let base = map.assumingMemoryBound(to: UInt8.self)
            let w = max(1, window)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            var start = 0, end = min(size, w)
            while true {
                guard lease.held else {
                    // The lease is being broken (a writer waits): released, and the rest read from the file, not the map.
                    lease.release()
                    return try readRest(fd, key, from: start, size: size, window: w, body)
                }
                if end < size {
                    let from = end & ~(page - 1)
                    _ = madvise(UnsafeMutableRawPointer(mutating: base + from), min(size, end + w) - from, MADV_WILLNEED)
                }
                let left = try body(UnsafeBufferPointer(start: base + start, count: end - start), end == size)
                if end == size { return }
                start = end - min(max(0, left), end - start)
                end = min(size, end + w)
            }
        #else
            try await forEachWindowByReading(of: key, window: window, body)
        #endif
    }

    /// The rest of `forEachWindow` from `from` with `pread` copies (what a map lent up to there continues with).
    private func readRest(
        _ fd: Int32, _ key: String, from: Int, size: Int, window: Int, _ body: (UnsafeBufferPointer<UInt8>, _ end: Bool) throws -> Int
    ) throws {
        var start = from, span = window
        while true {
            let end = min(size, start + span)
            let bytes = try Self.preadAll(fd, key, Int64(start)..<Int64(end), size: Int64(size))
            let left = try bytes.withUnsafeBufferPointer { try body($0, end == size) }
            if end == size { return }
            let consumed = (end - start) - min(max(0, left), end - start)
            if consumed == 0 { span += window } else { (start, span) = (start + consumed, window) }
        }
    }

    /// Opens a regular file for reading without following any link below the root.
    func openFile(_ key: String) throws -> Int32 {
        guard let parent = try openParent(key, create: false) else {
            throw LetheError(.notFound, "cannot open: \(String(cString: strerror(ENOENT)))", at: key)
        }
        defer { close(parent.fd) }
        return try Self.openRegular(parent.fd, parent.name, key: key)
    }

    /// Opens the regular file `name` in the folder `dfd` read-only: never a link, never blocking on a FIFO.
    static func openRegular(_ dfd: Int32, _ name: [CChar], key: String) throws -> Int32 {
        var st = stat()
        guard fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw LetheError(errno == ENOENT ? .notFound : .io, "cannot open: \(String(cString: strerror(errno)))", at: key)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw notFollowed(key, st, dfd, name, what: "the object") }
        let fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw LetheError(errno == ENOENT ? .notFound : .io, "cannot open: \(String(cString: strerror(errno)))", at: key)
        }
        var now = stat()
        guard fstat(fd, &now) == 0, (now.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw notFollowed(key, now, dfd, name, what: "the object")
        }
        return fd
    }

    /// The error for an entry Lethe will not read: a link (named with its target), a FIFO, a socket, a device.
    static func notFollowed(_ key: String, _ st: stat, _ dfd: Int32, _ name: [CChar], what: String) -> LetheError {
        let kind: String
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlinkat(dfd, name, &buf, buf.count - 1)
            let target = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            kind = "a symbolic link (to \(target))"
        case S_IFIFO: kind = "a FIFO (named pipe)"
        case S_IFSOCK: kind = "a socket"
        case S_IFCHR, S_IFBLK: kind = "a device"
        case S_IFDIR: kind = "a folder"
        default: kind = "not a regular file"
        }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            return LetheError(
                .unsupported,
                "\(what) is \(kind): Lethe reads regular files and folders only and never follows links below the lake root; replace it by what it points to, or move it out of the dataset",
                at: key)
        }
        // A pipe, socket or device has no stored content to erase from (and reading a pipe would block or consume a writer's data).
        return LetheError(
            .unsupported, "\(what) `\(key)` is \(kind), not a regular file: Lethe reads regular files and folders only; move it out of the dataset",
            at: key)
    }

    // MARK: Writing

    /// The key of the temporary file a write of `key` uses (`.<name>.lethe-tmp-<random>` beside it).
    static func temporaryKey(for key: String, random: String) -> String {
        let slash = key.lastIndex(of: "/")
        let folder = slash.map { String(key[...$0]) } ?? ""
        let name = slash.map { String(key[key.index(after: $0)...]) } ?? key
        return folder + "." + name + tempMarker + random
    }

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        try await openWrite(key, precondition: precondition, durability: .immediate)
    }

    /// A `.deferred` write is fsynced by `makeDurable` (with others, in one pass) instead of in its
    /// `commit`; a commit of one not made durable yet fsyncs it first.
    public func openWrite(_ key: String, precondition: WritePrecondition, durability: WriteDurability) async throws -> any ObjectWriteStream {
        try await openWrites([(key, precondition)], durability: durability)[0]
    }

    /// Every write's folder is opened (created) first, then all their temporary files are journaled
    /// in one `onTemporary` call, then created.
    public func openWrites(_ writes: [(key: String, precondition: WritePrecondition)], durability: WriteDurability) async throws
        -> [any ObjectWriteStream]
    {
        var parents: [Parent] = []
        let randoms = writes.map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }
        do {
            for w in writes {
                guard let parent = try openParent(w.key, create: true) else { throw LetheError(.badInput, "not an object key", at: w.key) }
                parents.append(parent)
            }
            if let onTemporary, !writes.isEmpty {
                try await onTemporary(zip(writes, randoms).map { Self.temporaryKey(for: $0.0.key, random: $0.1) })
            }
        } catch {
            for p in parents { close(p.fd) }
            throw error
        }
        var out: [any ObjectWriteStream] = []
        for (i, w) in writes.enumerated() {
            do {
                out.append(try openTemporary(w.key, precondition: w.precondition, durability: durability, parent: parents[i], random: randoms[i]))
            } catch {
                for p in parents[(i + 1)...] { close(p.fd) }
                for o in out { await o.abort() }
                throw error
            }
        }
        return out
    }

    /// Creates the temporary file of a write in its opened folder (which the write then owns; closed here on failure).
    private func openTemporary(
        _ key: String, precondition: WritePrecondition, durability: WriteDurability, parent: Parent, random: String
    ) throws -> LocalWriteStream {
        let base = parent.name.dropLast().map { UInt8(bitPattern: $0) }
        let tmp: [CChar] = ([0x2E] + base + Array(Self.tempMarker.utf8) + Array(random.utf8)).map { CChar(bitPattern: $0) } + [0]
        let fd = openat(parent.fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            close(parent.fd)
            throw LetheError.io("cannot create temporary file", at: key, errno: e)
        }
        let w = LocalWriteStream(fd: fd, dirFD: parent.fd, tmp: tmp, name: parent.name, key: key, precondition: precondition, store: self)
        w.startsWriteback = durability == .deferred
        if durability == .deferred {
            switch directWrites {
            case .never: break
            case .always: w.direct = true
            case .whenPageCacheIsSlow: if pageCache.isSlow { w.direct = true } else { w.measures = true }
            }
            if w.direct {
                var st = stat()
                if fstat(fd, &st) != 0 || pageCache.refuses(device: UInt64(st.st_dev)) { w.direct = false }
            }
        }
        return w
    }

    /// A `.deferred` write in direct mode gathers small writes until it holds this many bytes, then
    /// writes what it holds in whole aligned blocks with `O_DIRECT` (one device write per run, not
    /// per small write); what is left when it is made durable or committed is written buffered.
    static let directRun = 128 << 10

    /// A `.deferred` write hands what it wrote to the kernel's writeback every this many bytes
    /// (`sync_file_range(2)`, `SYNC_FILE_RANGE_WRITE`, on `writeback`'s thread, not waited for): the
    /// disk writes while the caller goes on (a Delta erasure rewrites its next files), and the one
    /// durability pass at the end (`makeDurable`) waits for what is left, not for every byte. The
    /// page cache would otherwise start writing only past `dirty_background_ratio`.
    static let writebackChunk: Int64 = 512 << 10
    /// The thread that starts the writeback of deferred writes (one: the calls may block while the
    /// device's queue is full, and nothing waits for them).
    static let writeback = BlockingIOPool(threads: 1)

    /// One thread that closes the files replaced by commits once their writers are dropped: the last
    /// close of a file the rename unlinked frees its blocks, and ext4 does that in `close` (the
    /// Delta vacuum's 1,657 scrubbed log files: 0.17–1.7 s on the thread that dropped the writers, a
    /// cooperative one). Closing later only holds the old blocks a little longer.
    static let closer = BlockingIOPool(threads: 1)

    /// Returns once every close handed to `closer` before the call has run (tests: no descriptor left).
    public static func closesDone() async {
        _ = try? await closer.run {}
    }

    /// The one durability pass: the temporary files of `writers` (this store's, not committed) are
    /// fsynced in parallel on the I/O pool; their commits then rename without another fsync. Writers
    /// of another store are left to their own commits.
    /// From this many writers on, `makeDurable` syncs their file systems instead of each file.
    /// `syncfs(2)` waits for every dirty page of the file system, the other writers' too (a copy made
    /// just before, another job's output): on a Delta erasure of 100 files of ~950 KB it took 0.17–0.33 s
    /// where 100 fsyncs in parallel took 0.022–0.026 s (issue 12, session 27). Past a few hundred files
    /// the fsyncs' journal commits cost more (1,655 small files: 0.37 s against syncfs's 0.06 s).
    static let filesystemSyncThreshold = 256

    public func makeDurable(_ writers: [any ObjectWriteStream]) async throws {
        // Writes made durable already (by an earlier pass, or `commitNew`'s `others`) need nothing.
        let mine = writers.compactMap { $0 as? LocalWriteStream }.filter { !$0.isDurable }
        guard !mine.isEmpty else { return }
        counters.durabilityPasses.add(1, ordering: .relaxed)
        if mine.count >= Self.filesystemSyncThreshold {
            // Many files (a Delta erasure of 1,655 small files): one `syncfs(2)` per file system
            // flushes them all, where one `fsync` each costs a journal commit each.
            try await io { try LocalWriteStream.syncFileSystems(mine, counters: self.counters) }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in mine {
                group.addTask { try await self.io { try w.makeDurableNow() } }
            }
            try await group.waitForAll()
        }
    }

    /// The writers' renames (and version checks) in one hop on the I/O pool, then one `fsync` per
    /// folder instead of one per file. Writers of another store are committed one by one.
    public func commit(_ writers: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let mine = writers.compactMap { $0 as? LocalWriteStream }
        guard mine.count == writers.count else {
            var out: [ObjectInfo] = []
            for w in writers { out.append(try await w.commit()) }
            return out
        }
        guard !mine.isEmpty else { return [] }
        return try await io { try LocalWriteStream.commitAll(mine) }
    }

    /// New files (`.absent`) linked into place in one hop (writes made durable already, of any
    /// precondition, committed there as `commit(_:)` would), then, all at once on the I/O pool, an
    /// `fsync` of each file not yet durable and of `others` (or `syncfs` past
    /// `filesystemSyncThreshold` files) and of each folder written into: one wait where `makeDurable`
    /// then `commit(_:)` wait twice (the files, then the folders after the links). A new file may thus
    /// be named before its bytes are durable, which only keys nothing names yet may allow (see the
    /// protocol); a replacement is never renamed before its bytes are durable. Writers of another
    /// store, or a replacement not yet durable, go the ordered way.
    public func commitNew(_ writers: [any ObjectWriteStream], makingDurable others: [any ObjectWriteStream]) async throws -> [ObjectInfo] {
        let mine = writers.compactMap { $0 as? LocalWriteStream }, alongside = others.compactMap { $0 as? LocalWriteStream }
        guard mine.count == writers.count, alongside.count == others.count, mine.allSatisfy({ $0.createsNew || $0.isDurable }) else {
            try await makeDurable(writers + others)
            return try await commit(writers)
        }
        guard !mine.isEmpty else {
            try await makeDurable(others)
            return []
        }
        let (published, folders) = try await io { try LocalWriteStream.publishAll(mine) }
        let files = zip(mine, published).filter { $0.1 == nil }.map(\.0) + alongside
        if !files.isEmpty { counters.durabilityPasses.add(1, ordering: .relaxed) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if files.count >= Self.filesystemSyncThreshold {
                group.addTask { try await self.io { try LocalWriteStream.syncFileSystems(files, counters: self.counters) } }
            } else {
                for w in files { group.addTask { try await self.io { try w.makeDurableNow() } } }
            }
            for (folder, fd) in folders {
                group.addTask {
                    try await self.io {
                        if fsync(fd) != 0 { throw LetheError.io("fsync of the folder failed", at: folder.isEmpty ? self.root : folder, errno: errno) }
                    }
                }
            }
            try await group.waitForAll()
        }
        counters.folderSyncs.add(folders.count, ordering: .relaxed)
        return try zip(mine, published).map { w, info in try info ?? w.finishLinked() }
    }

    /// Unlinks the files folder by folder (one `fsync` per folder), then removes the folders the
    /// deletes left empty, up to the root: a folder named after a partition value (`user_id=u-42/`)
    /// must not outlive the subject's last file. `keptFolders` stay.
    public func delete(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        guard keys.count >= Self.parallelUnlinkThreshold, let pool = ioPool, pool.threads > 1 else {
            return try await io { try deleteNow(keys) }
        }
        // Many files (a vacuum of 1,655 replaced files): the unlinks in parallel on the I/O pool, a
        // part each, then the folders synced once each. An unlink waits on the kernel freeing the
        // file's blocks (3–4 ms each on an ext4 mounted with `discard`, mostly off the CPU): four at a
        // time took 0.66–0.90 s for 1,000 files where one after another took 3.6–3.8 s.
        let parts = min(pool.threads, (keys.count + Self.parallelUnlinkThreshold / 2 - 1) / (Self.parallelUnlinkThreshold / 2))
        let size = (keys.count + parts - 1) / parts
        try await withThrowingTaskGroup(of: Void.self) { group in
            for start in stride(from: 0, to: keys.count, by: size) {
                let part = Array(keys[start..<min(keys.count, start + size)])
                group.addTask { try await self.io { try self.unlinkNow(part) } }
            }
            try await group.waitForAll()
        }
        try await io { try deleteNow(keys, unlinked: true) }  // the folders synced, emptied ones removed
    }

    /// From this many keys on, `delete` unlinks them in parallel parts.
    static let parallelUnlinkThreshold = 64

    /// Unlinks `keys` (a missing one is gone already), nothing synced.
    func unlinkNow(_ keys: [String]) throws {
        for key in keys {
            guard let parent = try openParent(key, create: false) else { continue }
            defer { close(parent.fd) }
            if unlinkat(parent.fd, parent.name, 0) != 0 && errno != ENOENT {
                throw LetheError.io("cannot delete", at: key, errno: errno)
            }
        }
    }

    /// Deletes `keys` and syncs each folder once; `unlinked`: the files are gone already (`unlinkNow`),
    /// only their folders are synced and emptied ones removed.
    func deleteNow(_ keys: [String], unlinked: Bool = false) throws {
        var byFolder: [String: [String]] = [:]
        var order: [String] = []
        for key in keys {
            let folder = key.lastIndex(of: "/").map { String(key[..<$0]) } ?? ""
            if byFolder[folder] == nil { order.append(folder) }
            byFolder[folder, default: []].append(key)
        }
        for folder in order {
            var dfd: Int32 = -1
            defer { if dfd >= 0 { close(dfd) } }
            for key in byFolder[folder]! {
                guard let parent = try openParent(key, create: false) else { continue }
                if dfd >= 0 { close(dfd) }
                dfd = parent.fd
                if unlinked { break }  // the folder's descriptor is all that is needed
                if unlinkat(parent.fd, parent.name, 0) != 0 && errno != ENOENT {
                    throw LetheError.io("cannot delete", at: key, errno: errno)
                }
            }
            guard dfd >= 0 else { continue }
            fsync(dfd)
            var up = folder
            while !up.isEmpty, !keptFolders.contains(up), let p = try? openParent(up, create: false) {
                defer { close(p.fd) }
                guard unlinkat(p.fd, p.name, AT_REMOVEDIR) == 0 else { break }
                fsync(p.fd)
                up = up.lastIndex(of: "/").map { String(up[..<$0]) } ?? ""
            }
        }
    }

    // MARK: Local paths

    public func localPath(of key: String) -> String? {
        if key.isEmpty { return root }
        if key.unicodeScalars.contains("\u{FFFD}") { return nil }  // a name that is not UTF-8: no String path names it
        return root + "/" + key
    }

    /// The path made absolute and resolved lexically (`.`, `..`, repeated slashes); when it is not
    /// lexically under the root, the same folders reached through links (`/tmp` and `/private/tmp`).
    public func key(forLocalPath path: String) -> String? {
        let base = Self.lexicallyNormalized(Self.absolute(root))
        let target = Self.lexicallyNormalized(Self.absolute(path))
        func key(under base: String, _ target: String) -> String? {
            let b = base == "/" ? "/" : base + "/"
            guard target.hasPrefix(b), target.count > b.count else { return nil }
            return String(target.dropFirst(b.count))
        }
        if let k = key(under: base, target) { return k }
        let slash = target.lastIndex(of: "/")!
        let dir = slash == target.startIndex ? "/" : String(target[..<slash]), name = String(target[target.index(after: slash)...])
        guard !name.isEmpty, let rb = Self.realPath(base), let rd = Self.realPath(dir) else { return nil }
        return key(under: rb, (rd == "/" ? "" : rd) + "/" + name)
    }

    public func prefixStatus(_ prefix: String) async throws -> PrefixStatus {
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        guard let path = localPath(of: p) else { return .missing }
        var st = stat()
        return stat(path, &st) == 0 ? .exists : .missing
    }

    static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" + p }
        let cwd = buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: cwd, as: UTF8.self) + "/" + p
    }

    static func lexicallyNormalized(_ p: String) -> String {
        var parts: [Substring] = []
        for c in p.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// Creates a folder and its parents (mode 0755).
    public static func makeDirs(_ dir: String, mode: mode_t = 0o755) throws {
        var st = stat()
        if stat(dir, &st) == 0 { return }
        let parent = dirname(dir)
        if parent != dir && parent != "." && parent != "/" { try makeDirs(parent, mode: mode) }
        if mkdir(dir, mode) != 0 && errno != EEXIST {
            throw LetheError.io("cannot create folder", at: dir, errno: errno)
        }
    }

    static func dirname(_ p: String) -> String {
        guard let i = p.lastIndex(of: "/") else { return "." }
        return i == p.startIndex ? "/" : String(p[..<i])
    }

    // MARK: Paths

    /// The folder that holds `key`'s last component, opened component by component from the root
    /// without following links, and that component's name.
    struct Parent: Sendable { var fd: Int32; var name: [CChar] }

    /// The root folder, or nil when it does not exist (and `create` is false).
    private func openRoot(create: Bool = false) throws -> Int32? {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            guard create else { return nil }
            try Self.makeDirs(root)
            fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw LetheError.io("cannot open the lake folder", at: root, errno: errno) }
        return fd
    }

    /// Nil when a folder on the way does not exist (and `create` is false) or is a file.
    /// A link or other non-folder on the way throws `.unsupported` naming it.
    func openParent(_ key: String, create: Bool) throws -> Parent? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard let last = parts.last, !last.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw LetheError(.badInput, "not an object key (empty, `.` or `..` component)", at: key)
        }
        guard var fd = try openRoot(create: create) else { return nil }
        var walked = ""
        for part in parts.dropLast() {
            let name = Self.cName(part)
            walked += walked.isEmpty ? String(part) : "/" + part
            var next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(fd, name, 0o755) != 0 && errno != EEXIST {
                    let e = errno
                    close(fd)
                    throw LetheError.io("cannot create folder", at: walked, errno: e)
                }
                next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 {
                let e = errno
                defer { close(fd) }
                var st = stat()
                if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) != S_IFREG && (st.st_mode & S_IFMT) != S_IFDIR {
                    throw Self.notFollowed(walked, st, fd, name, what: "the folder")
                }
                if e == ENOENT || e == ENOTDIR { return nil }
                throw LetheError.io("cannot open folder", at: walked, errno: e)
            }
            close(fd)
            fd = next
        }
        return Parent(fd: fd, name: Self.cName(last))
    }

    // MARK: Keys and file names

    /// A key component for a file name's bytes: the name itself when it is UTF-8 without U+FFFD; else each
    /// byte that is not part of a valid character (and each byte of a literal U+FFFD) is written U+FFFD
    /// followed by two upper-case hex digits. One key per name, one name per key.
    static func keyComponent(_ bytes: [UInt8]) -> String {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        if let s = String(validating: bytes, as: UTF8.self), !s.unicodeScalars.contains("\u{FFFD}") { return s }
        var out = ""
        var i = 0
        let digits = Array("0123456789ABCDEF".unicodeScalars)
        func escape(_ b: UInt8) {
            out.unicodeScalars.append("\u{FFFD}")
            out.unicodeScalars.append(digits[Int(b >> 4)])
            out.unicodeScalars.append(digits[Int(b & 15)])
        }
        while i < bytes.count {
            let n = validSequenceLength(bytes, i)
            if n == 0 {
                escape(bytes[i]); i += 1
            } else if n == 3 && bytes[i] == 0xEF && bytes[i + 1] == 0xBF && bytes[i + 2] == 0xBD {
                for b in bytes[i..<(i + 3)] { escape(b) }
                i += 3
            } else {
                out += String(decoding: bytes[i..<(i + n)], as: UTF8.self)
                i += n
            }
        }
        return out
    }

    /// The length of the valid UTF-8 sequence starting at `i`, or 0.
    static func validSequenceLength(_ b: [UInt8], _ i: Int) -> Int {
        let c = b[i]
        let n: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch c {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: n = 2
        case 0xE0: n = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: n = 3
        case 0xED: n = 3; hi = 0x9F
        case 0xF0: n = 4; lo = 0x90
        case 0xF1...0xF3: n = 4
        case 0xF4: n = 4; hi = 0x8F
        default: return 0
        }
        guard i + n <= b.count else { return 0 }
        for k in 1..<n {
            let x = b[i + k]
            if k == 1 { if x < lo || x > hi { return 0 } } else if x < 0x80 || x > 0xBF { return 0 }
        }
        return n
    }

    /// The file name a key component stands for (the inverse of `keyComponent`), NUL-terminated.
    static func cName(_ component: Substring) -> [CChar] {
        let u = Array(component.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(u.count + 1)
        var i = 0
        while i < u.count {
            if u[i] == 0xEF, i + 4 < u.count, u[i + 1] == 0xBF, u[i + 2] == 0xBD,
                let h = hexValue(u[i + 3]), let l = hexValue(u[i + 4])
            {
                out.append(h << 4 | l)
                i += 5
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return out.map { CChar(bitPattern: $0) } + [0]
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// One walk of a local listing: a stack of open folders, each with its entries in key order. Pages
/// come from continuing the walk, so a listing of many pages reads each folder once.
///
/// `@unchecked Sendable`: a walk belongs to one listing iterator, which asks for one page at a time
/// (each page may be filled on an I/O thread); nothing else reaches it.
final class LocalListing: ObjectPageSource, @unchecked Sendable {
    /// A folder entry: its name at `nameAt` in its frame's `names` (NUL-terminated), its key component.
    struct Entry { var nameAt: Int; var component: String; var isDir: Bool }
    struct Frame { var dir: OpaquePointer; var keyPrefix: String; var names: [CChar]; var entries: [Entry]; var next = 0 }

    private let store: LocalObjectStore
    private let prefix: String
    private let startAfter: String?
    private let keysOnly: Bool
    /// A folder prefix (ending in `/`) whose keys the walk leaves out, without opening the folder.
    private let skipping: String?
    private var stack: [Frame] = []
    private var started = false

    init(store: LocalObjectStore, prefix: String, startAfter: String?, keysOnly: Bool, skipping: String? = nil) {
        self.store = store
        self.prefix = prefix
        self.startAfter = startAfter
        self.keysOnly = keysOnly
        self.skipping = skipping
    }
    deinit { for f in stack { closedir(f.dir) } }

    func nextPage() async throws -> [ObjectInfo]? { try await store.io { try self.fill() } }

    /// The next page, read synchronously (blocking system calls).
    func fill() throws -> [ObjectInfo]? {
        var out: [ObjectInfo] = []
        if !started {
            started = true
            switch try store.walkStart(prefix) {
            case .nothing:
                return nil
            case .object(let key, let dfd, let name):
                defer { close(dfd) }
                if let a = startAfter, !keyPrecedes(a, key) { return nil }
                if let s = skipping, key.hasPrefix(s) { return nil }
                return name.withUnsafeBufferPointer { [info(key, dfd, $0.baseAddress!)].compactMap { $0 } }
            case .folder(let fd, let keyPrefix):
                try push(fd, keyPrefix)
            }
        }
        let size = max(1, store.pageSize)
        while out.count < size, let top = stack.indices.last {
            guard stack[top].next < stack[top].entries.count else {
                closedir(stack.removeLast().dir)
                continue
            }
            let at = stack[top].next
            stack[top].next += 1
            let isDir = stack[top].entries[at].isDir, nameAt = stack[top].entries[at].nameAt
            let key = stack[top].keyPrefix + stack[top].entries[at].component
            let dfd = dirfd(stack[top].dir)
            if isDir {
                let folder = key + "/"
                // A folder whose keys all sort before `startAfter` is skipped unopened.
                if let a = startAfter, !a.hasPrefix(folder), keyPrecedes(folder, a) { continue }
                // The folder to leave out, or one inside it.
                if let s = skipping, folder.hasPrefix(s) { continue }
                let sub = stack[top].names.withUnsafeBufferPointer { openat(dfd, $0.baseAddress! + nameAt, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard sub >= 0 else { throw LetheError.io("cannot open folder", at: key, errno: errno) }
                try push(sub, folder)
            } else {
                // Files, and what Lethe will not read (links, FIFOs, sockets, devices): listed all the same.
                if let a = startAfter, !keyPrecedes(a, key) { continue }
                if let s = skipping, key.hasPrefix(s) { continue }
                if let i = stack[top].names.withUnsafeBufferPointer({ info(key, dfd, $0.baseAddress! + nameAt) }) { out.append(i) }
            }
        }
        return out.isEmpty ? nil : out
    }

    private func push(_ fd: Int32, _ keyPrefix: String) throws {
        let (dir, names, entries) = try store.folderEntries(fd, keyPrefix: keyPrefix, startAfter: startAfter)
        stack.append(Frame(dir: dir, keyPrefix: keyPrefix, names: names, entries: entries))
    }

    /// The entry's metadata (nil when it vanished since the folder was read); keys-only walks skip the `stat`.
    private func info(_ key: String, _ dfd: Int32, _ name: UnsafePointer<CChar>) -> ObjectInfo? {
        if keysOnly { return ObjectInfo(key: key, size: 0, modifiedNanos: 0, version: "") }
        var st = stat()
        guard fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return LocalObjectStore.info(key: key, st)
    }
}

/// `@unchecked Sendable`: a stream is used by one task at a time; the I/O pool runs its system calls
/// while that task awaits them.
final class LocalReadStream: ObjectReadStream, @unchecked Sendable {
    private var fd: Int32
    private let key: String
    private let chunkSize: Int
    private let store: LocalObjectStore
    /// The chunk read at open (see `prefetch`), returned first.
    private var first: [UInt8]?
    /// Whether the last read came back short: the file's end is most likely next, a cheap call.
    private var short = false

    init(fd: Int32, key: String, chunkSize: Int, store: LocalObjectStore) {
        self.fd = fd; self.key = key; self.chunkSize = chunkSize; self.store = store
    }
    deinit { close() }

    /// Reads the first chunk now.
    func prefetch() throws {
        first = try readChunk()
    }

    /// Whether the first chunk is a small copy (a small chunk size, or a small file).
    func prefetchIsSmall() -> Bool {
        if chunkSize < LocalObjectStore.inlineBytes { return true }
        var st = stat()
        return fstat(fd, &st) == 0 && Int64(st.st_size) < Int64(LocalObjectStore.inlineBytes)
    }

    func next() async throws -> [UInt8]? {
        if let f = first {
            first = nil
            return f.isEmpty ? nil : f
        }
        guard fd >= 0 else { return nil }
        if short || chunkSize < LocalObjectStore.inlineBytes { return try readChunk().nilIfEmpty }
        return try await store.io { try self.readChunk() }.nilIfEmpty
    }

    private func readChunk() throws -> [UInt8] {
        guard fd >= 0 else { return [] }
        // Read into uninitialized memory: zeroing a chunk first cost as much as a pass of the search.
        let buf = try [UInt8](unsafeUninitializedCapacity: chunkSize) { b, count in
            while true {
                let n = Glibc.read(fd, b.baseAddress!, b.count)
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: key, errno: errno) }
                count = n
                return
            }
        }
        short = buf.count < chunkSize
        return buf
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

#if os(Linux)
    /// A read lease on an open file, held while `forEachWindow` lends it mapped: another process's
    /// `truncate` or open for writing waits for it (see `LocalObjectStore.forEachWindow`).
    struct MappedRead {
        let fd: Int32
        static let F_SETLEASE: Int32 = 1024
        static let F_GETLEASE: Int32 = 1025
        /// A lease broken while held signals SIGIO, whose default action ends the process.
        private static let ignoreLeaseBreakSignal: Void = { _ = signal(SIGIO, SIG_IGN) }()

        /// Nil when the lease cannot be taken (open for writing, not the owner, no leases here).
        init?(fd: Int32) {
            Self.ignoreLeaseBreakSignal
            guard fcntl(fd, Self.F_SETLEASE, Int32(F_RDLCK)) == 0 else { return nil }
            self.fd = fd
        }
        /// False once a writer has begun to break the lease.
        var held: Bool { fcntl(fd, Self.F_GETLEASE) == Int32(F_RDLCK) }
        func release() { _ = fcntl(fd, Self.F_SETLEASE, Int32(F_UNLCK)) }
    }
#endif

extension [UInt8] {
    fileprivate var nilIfEmpty: [UInt8]? { isEmpty ? nil : self }
}

/// A buffer handed to the I/O pool by a caller that awaits the pool's call (so the memory outlives it).
struct BorrowedBytes: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
}

/// `@unchecked Sendable`: a stream is used by one task at a time; the I/O pool runs its system calls
/// while that task awaits them.
final class LocalWriteStream: ObjectWriteStream, @unchecked Sendable {
    private var fd: Int32
    fileprivate var dirFD: Int32
    private let tmp: [CChar], name: [CChar]
    fileprivate let key: String
    private let precondition: WritePrecondition
    private var finished = false
    /// The replaced file, kept open after the rename: bytes a writer still appends to it are read by `replacedTail`.
    private var replaced: Int32 = -1
    /// Whether the temporary file's data is durable already (`makeDurable`).
    private var synced = false
    /// Whether `commit` fsyncs the folder (`commitAll` does it once per folder instead).
    fileprivate var syncFolder = true
    /// Named at its key by `commitNew` before its bytes were made durable (then finished by it).
    private var linked = false
    /// A `.deferred` write: the kernel's writeback of written bytes is started as they accumulate.
    fileprivate var startsWriteback = false
    /// Bytes written so far, and how many of them were handed to the writeback.
    private var writtenBytes: Int64 = 0
    private var writebackFrom: Int64 = 0
    /// Files `copyRange` copies from, opened once each and checked to be at the version asked for.
    private var sources: [String: (fd: Int32, version: String)] = [:]

    /// Direct mode (a `.deferred` write while `directWrites` says so): the bytes are gathered in
    /// `pending` and written at explicit offsets, whole aligned blocks with `O_DIRECT` through
    /// `directFD`, the rest (at most `directRun`, usually the last partial block) buffered through `fd`
    /// when the write is made durable or committed. `fd`'s file offset is unused meanwhile; a refusal
    /// of `O_DIRECT` leaves direct mode for good (the pending bytes written buffered, the offset set).
    fileprivate var direct = false
    /// The temporary file opened a second time with `O_DIRECT` (at the first direct write), or -1.
    private var directFD: Int32 = -1
    /// Bytes written (as far as the caller knows) but not yet in the file, from `pendingAt` (a multiple
    /// of `DirectBuffers.alignment`).
    private var pending: [UInt8] = []
    private var pendingAt: Int64 = 0
    /// Whether large buffered writes are timed for `store.pageCache` (`.whenPageCacheIsSlow`).
    fileprivate var measures = false

    fileprivate let store: LocalObjectStore

    init(fd: Int32, dirFD: Int32, tmp: [CChar], name: [CChar], key: String, precondition: WritePrecondition, store: LocalObjectStore) {
        self.fd = fd; self.dirFD = dirFD; self.tmp = tmp; self.name = name; self.key = key; self.precondition = precondition
        self.store = store
    }
    deinit {
        abortNow()
        closeSources()
        closeDirect()
        if replaced >= 0 {
            // The replaced file's last reference: its close frees the file's blocks (ext4 evicts the
            // inode there), which is left to the closing thread (`LocalObjectStore.closer`).
            let fd = replaced
            LocalObjectStore.closer.post { _ = Glibc.close(fd) }
        }
        if dirFD >= 0 { Glibc.close(dirFD) }
    }

    func write(_ bytes: [UInt8]) async throws {
        if staysInline(bytes.count) { return try bytes.withUnsafeBytes { try writeAll($0) } }
        try await store.io { try bytes.withUnsafeBytes { try self.writeAll($0) } }
    }
    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        if staysInline(bytes.count) { return try writeAll(bytes) }
        let borrowed = BorrowedBytes(buffer: bytes)
        try await store.io { try self.writeAll(borrowed.buffer) }
    }

    /// Whether appending `n` bytes runs on the caller: a small write, unless it completes a direct
    /// run (a device write, which waits).
    private func staysInline(_ n: Int) -> Bool {
        n < LocalObjectStore.inlineBytes && (!direct || pending.count + n < LocalObjectStore.directRun)
    }

    private func writeAll(_ b: UnsafeRawBufferPointer) throws {
        Swift.precondition(!finished, "write after commit/abort")
        if direct { return try appendDirect(b) }
        let timed = measures && b.count >= PageCacheGauge.measuredWriteBytes
        let t0 = timed ? store.pageCache.cpuNow() : 0
        var done = 0
        while done < b.count {
            let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
            if n < 0 { if errno == EINTR { continue }; throw LetheError.io("write failed", at: key, errno: errno) }
            done += n
        }
        if timed { store.pageCache.record(cpuNanos: store.pageCache.cpuNow() - t0, bytes: Int64(b.count)) }
        wrote(b.count)
    }

    // MARK: Direct writes

    /// Appends `b` in direct mode: gathered while the run is short, else written through an aligned buffer.
    private func appendDirect(_ b: UnsafeRawBufferPointer) throws {
        if pending.count + b.count < LocalObjectStore.directRun {
            pending.append(contentsOf: b)
            writtenBytes += Int64(b.count)
            return
        }
        var at = 0
        try pumpDirect(count: b.count) { dst, max in
            let n = min(max, b.count - at)
            dst.copyMemory(from: b.baseAddress! + at, byteCount: n)
            at += n
            return n
        }
    }

    /// Writes the pending bytes and `count` more, which `produce` puts at its first argument (at most
    /// its second, returning how many; at least one), through an aligned buffer from the pool: each
    /// full buffer, then the whole blocks of the last, go to the file; the partial block left stays
    /// pending. A refusal of `O_DIRECT` on the way leaves direct mode (`leaveDirect`).
    private func pumpDirect(count: Int, _ produce: (UnsafeMutableRawPointer, Int) throws -> Int) throws {
        let buf = DirectBuffers.take()
        defer { DirectBuffers.give(buf) }
        let cap = DirectBuffers.size
        var fill = pending.count
        if fill > 0 { pending.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: fill) } }
        pending.removeAll(keepingCapacity: true)
        var left = count
        while left > 0 {
            let n = try produce(buf + fill, min(left, cap - fill))
            fill += n
            left -= n
            writtenBytes += Int64(n)
            if fill == cap {
                try writeBlocks(buf, cap)
                fill = 0
            }
        }
        let whole = fill & ~(DirectBuffers.alignment - 1)
        if whole > 0 { try writeBlocks(buf, whole) }
        if fill > whole { pending.append(contentsOf: UnsafeRawBufferPointer(start: buf + whole, count: fill - whole)) }
        if !direct { try leaveDirect() }
    }

    /// Writes `n` bytes at `p` (aligned, a multiple of the alignment) at `pendingAt`: with `O_DIRECT`
    /// while in direct mode, buffered for what a refusal or a short write left.
    private func writeBlocks(_ p: UnsafeMutableRawPointer, _ n: Int) throws {
        var done = 0
        if direct && directFD < 0 { openDirect() }
        while done < n && directFD >= 0 {
            let r: Int
            if case .atWrite(let after) = store.refusesDirect, store.counters.bytesWrittenDirect.load(ordering: .relaxed) >= after {
                r = -1
                errno = EINVAL
            } else {
                r = pwrite(directFD, p + done, n - done, off_t(pendingAt) + off_t(done))
            }
            if r < 0 {
                let e = errno
                if e == EINTR { continue }
                guard LocalWriteStream.isRefusal(e) else { throw LetheError.io("write failed", at: key, errno: e) }
                refuseDirect()
                break
            }
            done += r
            store.counters.bytesWrittenDirect.add(Int64(r), ordering: .relaxed)
            if r == 0 || r % DirectBuffers.alignment != 0 { break }  // a short write: the rest buffered
        }
        while done < n {
            let r = pwrite(fd, p + done, n - done, off_t(pendingAt) + off_t(done))
            if r < 0 { if errno == EINTR { continue }; throw LetheError.io("write failed", at: key, errno: errno) }
            done += r
        }
        pendingAt += Int64(n)
    }

    /// The errors with which a file system refuses `O_DIRECT` (at open or at a write): the write goes
    /// on buffered. Any other error is the write's.
    static func isRefusal(_ e: Int32) -> Bool { e == EINVAL || e == EOPNOTSUPP || e == ENOTSUP || e == ENOSYS }

    /// Opens `directFD`; a refusal leaves direct mode.
    private func openDirect() {
        #if os(Linux)
            if case .atOpen = store.refusesDirect {
                refuseDirect()
                return
            }
            let d = openat(dirFD, tmp, O_WRONLY | LocalWriteStream.oDirect | O_CLOEXEC)
            if d >= 0 {
                directFD = d
                return
            }
            if LocalWriteStream.isRefusal(errno) { refuseDirect() } else { direct = false }
        #else
            direct = false
        #endif
    }

    /// `O_DIRECT` (the headers Swift imports declare it only under `_GNU_SOURCE`): Linux's value per architecture.
    #if arch(arm64) || arch(arm)
        static let oDirect: Int32 = 0o200000
    #else
        static let oDirect: Int32 = 0o40000
    #endif

    /// Leaves direct mode after the file system refused `O_DIRECT`, and remembers it refuses.
    private func refuseDirect() {
        direct = false
        closeDirect()
        store.counters.directRefusals.add(1, ordering: .relaxed)
        var st = stat()
        if fstat(fd, &st) == 0 { store.pageCache.refuse(device: UInt64(st.st_dev)) }
    }

    /// What direct mode left pending, written buffered at its offset; `fd`'s offset then at the end, so
    /// buffered writes (and kernel copies) append from there.
    private func leaveDirect() throws {
        try flushPending()
        if lseek(fd, off_t(writtenBytes), SEEK_SET) < 0 { throw LetheError.io("seek failed", at: key, errno: errno) }
    }

    /// Writes the pending bytes buffered at `pendingAt` (the end of a direct write: at most one run,
    /// usually less than a block).
    private func flushPending() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let r = pwrite(fd, b.baseAddress! + done, b.count - done, off_t(pendingAt) + off_t(done))
                if r < 0 { if errno == EINTR { continue }; throw LetheError.io("write failed", at: key, errno: errno) }
                done += r
            }
        }
        pendingAt += Int64(pending.count)
        pending = []
    }

    /// Ends direct mode's writing before the file is made durable: the pending bytes written, the
    /// direct descriptor closed.
    private func finishDirect() throws {
        try flushPending()
        closeDirect()
    }

    private func closeDirect() {
        if directFD >= 0 { Glibc.close(directFD); directFD = -1 }
    }

    /// Counts `n` bytes written; past `writebackChunk` not yet handed over, starts their writeback
    /// (on a descriptor of its own: the call may run after this stream is committed or closed).
    private func wrote(_ n: Int) {
        writtenBytes += Int64(n)
        guard startsWriteback, writtenBytes - writebackFrom >= LocalObjectStore.writebackChunk,
            let startWriteback = LocalWriteStream.syncFileRange
        else { return }
        let from = writebackFrom, count = writtenBytes - writebackFrom
        writebackFrom = writtenBytes
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return }
        store.counters.writebackStarts.add(1, ordering: .relaxed)
        LocalObjectStore.writeback.post {
            _ = startWriteback(copy, from, count, LocalWriteStream.syncFileRangeWrite)
            Glibc.close(copy)
        }
    }

    typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    /// `SYNC_FILE_RANGE_WRITE`: start writing the range's dirty pages, do not wait.
    static let syncFileRangeWrite: UInt32 = 2

    /// `sync_file_range(2)`, looked up at run time like `copyFileRange` (not declared by the
    /// headers Swift imports). Nil elsewhere: no hint, `makeDurable` writes everything.
    static let syncFileRange: SyncFileRange? = {
        #if os(Linux)
            guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
            return unsafeBitCast(sym, to: SyncFileRange.self)
        #else
            return nil
        #endif
    }()

    func commit() async throws -> ObjectInfo {
        Swift.precondition(!finished, "commit twice")
        do {
            // fsync, the lease check, rename and the folder's fsync: one hop.
            return try await store.io { try self.commitNow() }
        } catch {
            abortNow()
            throw error
        }
    }

    /// Commits `writers` in order with one `fsync` per folder at the end (also when one fails: the
    /// ones before it are then committed and durable, the failed one aborted, the rest left).
    static func commitAll(_ writers: [LocalWriteStream]) throws -> [ObjectInfo] {
        var folders: [Substring: Int32] = [:]
        var out: [ObjectInfo] = []
        var failure: (any Error)?
        for w in writers {
            w.syncFolder = false
            do {
                out.append(try w.commitNow())
            } catch {
                w.abortNow()
                failure = error
                break
            }
            let folder = w.key.lastIndex(of: "/").map { w.key[..<$0] } ?? ""
            if folders[folder] == nil { folders[folder] = w.dirFD }
        }
        for fd in folders.values { fsync(fd) }
        writers.first?.store.counters.folderSyncs.add(folders.count, ordering: .relaxed)
        if let failure { throw failure }
        return out
    }

    /// Whether the write creates a new object (`.absent`): `commitNew` may name it before it is durable.
    var createsNew: Bool { if case .absent = precondition { true } else { false } }
    /// Whether the written bytes are durable already (`makeDurable`).
    var isDurable: Bool { synced }

    /// `commitNew`'s publication, in order: a write durable already committed as `commitAll` would
    /// (its folder not synced; its `ObjectInfo` returned), any other (a new object) linked at its key
    /// (create-exclusive) and its temporary name removed, nothing synced, its descriptor left open
    /// for the pass's fsync (nil returned). Also returns the folder (its key prefix) and an open
    /// descriptor of each folder written into, for their fsyncs. On a failure the writes published
    /// before stay, the failing one is aborted.
    static func publishAll(_ writers: [LocalWriteStream]) throws -> ([ObjectInfo?], [(String, Int32)]) {
        var folders: [String: Int32] = [:]
        var out: [ObjectInfo?] = []
        for w in writers {
            do {
                if w.synced {
                    w.syncFolder = false
                    out.append(try w.commitNow())
                } else {
                    try w.linkNow()
                    out.append(nil)
                }
            } catch {
                w.abortNow()
                throw error
            }
            let folder = w.key.lastIndex(of: "/").map { String(w.key[..<$0]) } ?? ""
            if folders[folder] == nil { folders[folder] = w.dirFD }
        }
        return (out, folders.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// The link of `publishAll`: the object is named, its bytes not yet durable (the descriptor stays open).
    private func linkNow() throws {
        Swift.precondition(!finished && !linked, "link after commit/abort")
        closeSources()
        Self.beforeCommit()
        try finishDirect()
        if linkat(dirFD, tmp, dirFD, name, 0) != 0 {
            if errno == EEXIST { throw LetheError(.conflict, "object already exists", at: key) }
            throw LetheError.io("cannot create", at: key, errno: errno)
        }
        unlinkat(dirFD, tmp, 0)
        linked = true
    }

    /// Ends a write `publishAll` linked, once its bytes and its folder are durable.
    func finishLinked() throws -> ObjectInfo {
        Swift.precondition(linked && !finished, "finish of a write not linked")
        syncFolder = false
        return try finish()
    }

    private func commitNow() throws -> ObjectInfo {
        Swift.precondition(!linked, "commit of a linked write")
        closeSources()
        Self.beforeCommit()
        if case .absent = precondition {
            try syncData()
            // linkat() fails if the target exists: an atomic create-exclusive.
            if linkat(dirFD, tmp, dirFD, name, 0) != 0 {
                if errno == EEXIST { throw LetheError(.conflict, "object already exists", at: key) }
                throw LetheError.io("cannot create", at: key, errno: errno)
            }
            unlinkat(dirFD, tmp, 0)
            return try finish()
        }
        // The version being replaced, held open from here on.
        var st = stat()
        var exists = false
        if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            exists = true
            replaced = try LocalObjectStore.openRegular(dirFD, name, key: key)
            fstat(replaced, &st)
            try keepOwnerAndMode(of: st)
        } else if errno != ENOENT {
            throw LetheError.io("cannot stat", at: key, errno: errno)
        }
        try syncData()
        if exists { try refuseWhileOpenForWriting() }
        // The precondition, as late as possible: the file held open must still be the one the path names.
        if case .matches(let version) = precondition {
            var now = stat()
            var current = "absent"
            if fstatat(dirFD, name, &now, AT_SYMLINK_NOFOLLOW) == 0 {
                current = LocalObjectStore.info(key: key, now).version
                if exists && now.st_ino != st.st_ino { current += " (another file)" }
                if exists { fstat(replaced, &st) }
            }
            let held = exists ? LocalObjectStore.info(key: key, st).version : "absent"
            if current != version || held != version {
                throw LetheError(.conflict, "object changed while it was being rewritten (expected version \(version), found \(current))", at: key)
            }
        }
        if renameat(dirFD, tmp, dirFD, name) != 0 { throw LetheError.io("rename failed", at: key, errno: errno) }
        if exists, let ms = Self.pauseAfterReplace { usleep(ms * 1000) }
        return try finish()
    }

    /// Test hook: `LETHE_FAILPOINT_EXIT_BEFORE_COMMIT=N` ends the process abruptly (exit 86, as the
    /// engine's failpoints) right before the N-th write of the process is committed (renamed or linked
    /// into place): its temporary file written and journaled, the object as it was.
    static let exitBeforeCommit: Int? = getenv("LETHE_FAILPOINT_EXIT_BEFORE_COMMIT").flatMap { Int(String(cString: $0)) }
    static let commitsSeen = Atomic<Int>(0)
    static func beforeCommit() {
        guard let limit = exitBeforeCommit else { return }
        if commitsSeen.add(1, ordering: .relaxed).newValue >= limit { _exit(86) }
    }

    /// Test hook: `LETHE_FAILPOINT_PAUSE_AFTER_REPLACE_MS=N` sleeps N ms right after each replacing rename,
    /// so that an end-to-end test can append to the replaced file as a writer that opened it just before would.
    static let pauseAfterReplace: UInt32? = getenv("LETHE_FAILPOINT_PAUSE_AFTER_REPLACE_MS").flatMap { UInt32(String(cString: $0)) }

    private func finish() throws -> ObjectInfo {
        finished = true
        Glibc.close(fd); fd = -1
        if syncFolder {
            fsync(dirFD)
            store.counters.folderSyncs.add(1, ordering: .relaxed)
        }
        var st = stat()
        guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw LetheError.io("written object vanished", at: key, errno: errno) }
        return LocalObjectStore.info(key: key, st)
    }

    /// Gives the new file the replaced one's owner, group and permission bits; fails rather than
    /// change who may read the object.
    private func keepOwnerAndMode(of st: stat) throws {
        var mine = stat()
        fstat(fd, &mine)
        if mine.st_uid != st.st_uid || mine.st_gid != st.st_gid {
            if fchown(fd, st.st_uid, st.st_gid) != 0 {
                let e = errno
                throw LetheError(
                    .io,
                    "cannot keep the object's owner and group (uid \(st.st_uid), gid \(st.st_gid)): \(String(cString: strerror(e))); run lethe as that user or as root",
                    at: key)
            }
        }
        // After chown (which clears set-id bits).
        if fchmod(fd, st.st_mode & 0o7777) != 0 {
            throw LetheError.io("cannot keep the object's mode \(String(st.st_mode & 0o7777, radix: 8))", at: key, errno: errno)
        }
    }

    /// Refuses to replace a file another process holds open for writing: what it writes after the
    /// rename would go to the replaced file. Linux tells through a read lease, which cannot be taken
    /// while the file is open for writing; elsewhere (or where leases are refused) the tail carry
    /// (`replacedTail`) is what remains.
    private func refuseWhileOpenForWriting() throws {
        #if os(Linux)
            LocalWriteStream.ignoreLeaseBreakSignal
            let F_SETLEASE: Int32 = 1024
            // A holder that is about to close (a short-lived child that inherited a handle) gets a moment.
            for attempt in 0..<10 {
                if fcntl(replaced, F_SETLEASE, Int32(F_RDLCK)) == 0 {
                    _ = fcntl(replaced, F_SETLEASE, Int32(F_UNLCK))
                    return
                }
                guard errno == EAGAIN else { return }  // no lease here (another file system, no permission)
                if attempt < 9 { usleep(20_000) }
            }
            throw LetheError(
                .conflict,
                "the object is open for writing by another process: lake objects must not change once written; it is retried by the next run once the writer has closed it",
                at: key)
        #endif
    }

    #if os(Linux)
        /// A lease broken while held (for the instant of the check) signals SIGIO, whose default action ends the process.
        private static let ignoreLeaseBreakSignal: Void = { _ = signal(SIGIO, SIG_IGN) }()
    #endif

    func replacedTail(from offset: Int64) async throws -> [UInt8] {
        guard replaced >= 0 else { return [] }
        return try await store.io { try self.readReplacedTail(from: offset) }
    }

    private func readReplacedTail(from offset: Int64) throws -> [UInt8] {
        var st = stat()
        guard fstat(replaced, &st) == 0, Int64(st.st_size) > offset else { return [] }
        var out = [UInt8](repeating: 0, count: Int(Int64(st.st_size) - offset))
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < buf.count {
                let n = pread(replaced, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: key, errno: errno) }
                if n == 0 { break }
                done += n
            }
        }
        if done < out.count { out.removeSubrange(done...) }
        return out
    }

    /// fsyncs the temporary file unless `makeDurable` did.
    private func syncData() throws {
        try finishDirect()
        if synced { return }
        if fsync(fd) != 0 { throw LetheError.io("fsync failed", at: key, errno: errno) }
        synced = true
        store.counters.dataSyncs.add(1, ordering: .relaxed)
    }

    /// Makes the temporary files of `writers` durable with one `syncfs(2)` per file system they
    /// are on (it returns once the file system's dirty data and metadata are written out).
    static func syncFileSystems(_ writers: [LocalWriteStream], counters: LocalStoreCounters) throws {
        var byDevice: [UInt64: Int32] = [:]
        for w in writers {
            Swift.precondition(!w.finished, "makeDurable after commit/abort")
            try w.finishDirect()
            var st = stat()
            if fstat(w.fd, &st) != 0 { throw LetheError.io("fstat failed", at: w.key, errno: errno) }
            if byDevice[UInt64(st.st_dev)] == nil { byDevice[UInt64(st.st_dev)] = w.fd }
        }
        for fd in byDevice.values {
            if syncfs(fd) != 0 { throw LetheError.io("syncfs failed", at: writers[0].key, errno: errno) }
            counters.filesystemSyncs.add(1, ordering: .relaxed)
        }
        for w in writers { w.synced = true }
    }

    /// `makeDurable`'s part for this write (on the I/O pool).
    func makeDurableNow() throws {
        Swift.precondition(!finished, "makeDurable after commit/abort")
        try syncData()
    }

    // MARK: Copying ranges

    /// In the kernel (`copy_file_range(2)`) when `key` in `store` is a file of this store (the store
    /// itself, or a wrapper naming the same local path), else through memory.
    func copyRange(from key: String, version: String, range: Range<Int64>, in store: any ObjectStore) async throws {
        guard let path = store.localPath(of: key), path == self.store.localPath(of: key) else {
            return try await copyRangeByReading(from: key, version: version, range: range, in: store)
        }
        guard !range.isEmpty else { return }
        let src = try source(key, version: version)
        if range.count < Int64(LocalObjectStore.inlineBytes) && staysInline(Int(range.count)) { return try copyNow(from: src, key, range) }
        try await self.store.io { try self.copyNow(from: src, key, range) }
    }

    /// The open file of `key`, checked to be at `version` when opened (the descriptor then keeps
    /// reading that version, whatever replaces the path later).
    private func source(_ key: String, version: String) throws -> Int32 {
        if let s = sources[key] {
            guard s.version == version else {
                throw LetheError(.conflict, "object changed since it was read (expected version \(version), found \(s.version))", at: key)
            }
            return s.fd
        }
        let fd = try store.openFile(key)
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw LetheError.io("cannot stat", at: key, errno: e)
        }
        let now = LocalObjectStore.info(key: key, st).version
        guard now == version else {
            Glibc.close(fd)
            throw LetheError(.conflict, "object changed since it was read (expected version \(version), found \(now))", at: key)
        }
        sources[key] = (fd, version)
        return fd
    }

    private func closeSources() {
        for s in sources.values { Glibc.close(s.fd) }
        sources = [:]
    }

    /// Appends `range` of `src`: `copy_file_range` while the kernel can, short copies looped, then
    /// `pread`/`write` for the rest where it cannot (another file system, an old kernel).
    private func copyNow(from src: Int32, _ srcKey: String, _ range: Range<Int64>) throws {
        Swift.precondition(!finished, "copy after commit/abort")
        var at = range.lowerBound
        if direct {
            // Read into the aligned buffer (the source's pages are the page cache's already) and
            // written direct: a kernel copy would take a page-cache page per page copied.
            let read = { (dst: UnsafeMutableRawPointer, max: Int) throws -> Int in
                while true {
                    let n = pread(src, dst, max, off_t(at))
                    if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: srcKey, errno: errno) }
                    if n == 0 { throw LetheError(.io, "file shrank while copying from it", at: srcKey) }
                    at += Int64(n)
                    return n
                }
            }
            let count = Int(range.count)
            if pending.count + count < LocalObjectStore.directRun {
                let start = pending.count
                pending.append(contentsOf: repeatElement(0, count: count))
                try pending.withUnsafeMutableBytes { b in
                    var done = 0
                    while done < count { done += try read(b.baseAddress! + start + done, count - done) }
                }
                writtenBytes += Int64(count)
                return
            }
            return try pumpDirect(count: count, read)
        }
        let timed = measures && range.count >= Int64(PageCacheGauge.measuredWriteBytes)
        let t0 = timed ? store.pageCache.cpuNow() : 0
        defer { if timed { store.pageCache.record(cpuNanos: store.pageCache.cpuNow() - t0, bytes: at - range.lowerBound) } }
        if let copy = LocalWriteStream.copyFileRange {
            while at < range.upperBound {
                var inOffset = at
                let n = copy(src, &inOffset, fd, nil, Int(min(range.upperBound - at, 1 << 30)), 0)
                if n < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    if e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP { break }
                    throw LetheError.io("copy failed", at: key, errno: e)
                }
                if n == 0 { throw LetheError(.io, "file shrank while copying from it", at: srcKey) }
                at += Int64(n)
                store.counters.bytesCopiedInKernel.add(Int64(n), ordering: .relaxed)
                wrote(n)
            }
        }
        guard at < range.upperBound else { return }
        var buf = [UInt8](repeating: 0, count: Int(min(range.upperBound - at, 1 << 20)))
        try buf.withUnsafeMutableBytes { b in
            while at < range.upperBound {
                let want = Int(min(Int64(b.count), range.upperBound - at))
                let n = pread(src, b.baseAddress!, want, off_t(at))
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: srcKey, errno: errno) }
                if n == 0 { throw LetheError(.io, "file shrank while copying from it", at: srcKey) }
                try writeAll(UnsafeRawBufferPointer(rebasing: b[0..<n]))
                at += Int64(n)
            }
        }
    }

    typealias CopyFileRange = @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int

    /// `copy_file_range(2)` (Linux 4.5+, glibc 2.27+), looked up at run time: the C library headers
    /// Swift imports do not declare it. Nil elsewhere.
    static let copyFileRange: CopyFileRange? = {
        #if os(Linux)
            guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
            return unsafeBitCast(sym, to: CopyFileRange.self)
        #else
            return nil
        #endif
    }()

    func abort() async { abortNow() }

    func abortNow() {
        closeSources()
        closeDirect()
        pending = []
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if !finished { unlinkat(dirFD, tmp, 0); finished = true }
    }
}

/// Counts of what a `LocalObjectStore` did (relaxed atomics; for tests and benchmarks).
public final class LocalStoreCounters: Sendable {
    /// Bytes `copyRange` copied with `copy_file_range(2)` (not through user space).
    public let bytesCopiedInKernel = Atomic<Int64>(0)
    /// fsyncs of written data (one per write committed or made durable).
    public let dataSyncs = Atomic<Int>(0)
    /// `makeDurable` passes.
    public let durabilityPasses = Atomic<Int>(0)
    /// Ranges of deferred writes whose writeback was started early (`LocalObjectStore.writebackChunk`).
    public let writebackStarts = Atomic<Int>(0)
    /// `syncfs(2)` calls of `makeDurable` passes over many files (one per file system).
    public let filesystemSyncs = Atomic<Int>(0)
    /// fsyncs of folders after commits (one per commit, or one per folder of a `commit(_:)` batch).
    public let folderSyncs = Atomic<Int>(0)
    /// Objects `forEachWindow` lent mapped (not copied).
    public let mappedReads = Atomic<Int>(0)
    /// Bytes deferred writes wrote with `O_DIRECT` (past the page cache, `LocalObjectStore.directWrites`).
    public let bytesWrittenDirect = Atomic<Int64>(0)
    /// Deferred writes that went on buffered because the file system refused `O_DIRECT`.
    public let directRefusals = Atomic<Int>(0)
    public init() {}
}

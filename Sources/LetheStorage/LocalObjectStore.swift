import LetheCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An object store over a local folder. Keys are paths relative to the root.
///
/// Writes go to a temporary file beside the target (`.<name>.lethe-tmp-<random>`),
/// are fsynced, renamed over the target, and the folder is fsynced: a crash leaves
/// the old or the new content, never a mix. Temporary files are not listed. A delete
/// removes the folders it leaves empty (below the root).
public struct LocalObjectStore: ObjectStore {
    public let root: String
    public var location: String { root }

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    static let tempMarker = ".lethe-tmp-"

    func path(_ key: String) -> String { key.isEmpty ? root : root + "/" + key }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        let start = path(p)
        var st = stat()
        guard stat(start, &st) == 0 else { return [] }
        if (st.st_mode & S_IFMT) == S_IFREG {
            out.append(Self.info(key: p, st))
            return out
        }
        try walk(dir: start, keyPrefix: p.isEmpty ? "" : p + "/", into: &out)
        out.sort { $0.key < $1.key }
        return out
    }

    /// Keys only: `readdir`'s entry types, a `stat` only where the file system leaves the type unknown.
    public func listKeys(prefix: String) async throws -> [String] {
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        let start = path(p)
        var st = stat()
        guard stat(start, &st) == 0 else { return [] }
        if (st.st_mode & S_IFMT) == S_IFREG { return [p] }
        var out: [String] = []
        try walkKeys(dir: start, keyPrefix: p.isEmpty ? "" : p + "/", into: &out)
        out.sort()
        return out
    }

    private func walkKeys(dir: String, keyPrefix: String, into out: inout [String]) throws {
        try entries(dir) { name, full, entryType in
            var type = entryType
            if type == UInt8(DT_UNKNOWN) {
                var st = stat()
                guard lstat(full, &st) == 0 else { return }
                let kind = st.st_mode & S_IFMT
                type = kind == S_IFDIR ? UInt8(DT_DIR) : kind == S_IFREG ? UInt8(DT_REG) : UInt8(DT_UNKNOWN)
            }
            if type == UInt8(DT_DIR) {
                try walkKeys(dir: full, keyPrefix: keyPrefix + name + "/", into: &out)
            } else if type == UInt8(DT_REG) {
                out.append(keyPrefix + name)
            }
        }
    }

    private func walk(dir: String, keyPrefix: String, into out: inout [ObjectInfo]) throws {
        try entries(dir) { name, full, _ in
            var st = stat()
            guard lstat(full, &st) == 0 else { return }
            let kind = st.st_mode & S_IFMT
            if kind == S_IFDIR {
                try walk(dir: full, keyPrefix: keyPrefix + name + "/", into: &out)
            } else if kind == S_IFREG {
                out.append(Self.info(key: keyPrefix + name, st))
            }
        }
    }

    /// Calls `body(name, path, d_type)` for each entry of a folder but `.`, `..` and temporary files.
    private func entries(_ dir: String, _ body: (String, String, UInt8) throws -> Void) throws {
        guard let d = opendir(dir) else { throw LetheError.io("cannot list folder", at: dir, errno: errno) }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." || name.contains(Self.tempMarker) { continue }
            try body(name, dir + "/" + name, e.pointee.d_type)
        }
    }

    static func info(key: String, _ st: stat) -> ObjectInfo {
        #if canImport(Darwin)
        let ns = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        return ObjectInfo(key: key, size: Int64(st.st_size), modifiedNanos: ns,
                          version: "\(st.st_size)-\(ns)-\(st.st_ino)")
    }

    public func head(_ key: String) async throws -> ObjectInfo? {
        var st = stat()
        guard stat(path(key), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Self.info(key: key, st)
    }

    public func read(_ key: String, range: Range<Int64>?) async throws -> [UInt8] {
        let fd = open(path(key), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LetheError(errno == ENOENT ? .notFound : .io, "cannot open: \(String(cString: strerror(errno)))", at: key)
        }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = Int64(st.st_size)
        let r = range ?? 0..<size
        guard r.lowerBound >= 0, r.upperBound <= size else {
            throw LetheError(.badInput, "range \(r.lowerBound)..<\(r.upperBound) is past the end (\(size) bytes)", at: key)
        }
        var out = [UInt8](repeating: 0, count: Int(r.count))
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < buf.count {
                let n = pread(fd, buf.baseAddress! + done, buf.count - done, off_t(r.lowerBound) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: key, errno: errno) }
                if n == 0 { throw LetheError(.io, "file shrank while reading", at: key) }
                done += n
            }
        }
        return out
    }

    public func openRead(_ key: String, chunkSize: Int) async throws -> any ObjectReadStream {
        let fd = open(path(key), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LetheError(errno == ENOENT ? .notFound : .io, "cannot open: \(String(cString: strerror(errno)))", at: key)
        }
        return LocalReadStream(fd: fd, key: key, chunkSize: max(1, chunkSize))
    }

    public func openWrite(_ key: String, precondition: WritePrecondition) async throws -> any ObjectWriteStream {
        let target = path(key)
        let dir = Self.dirname(target)
        try Self.makeDirs(dir)
        let base = target.split(separator: "/").last.map(String.init) ?? key
        let tmp = dir + "/." + base + Self.tempMarker + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LetheError.io("cannot create temporary file", at: tmp, errno: errno) }
        return LocalWriteStream(fd: fd, tmp: tmp, target: target, dir: dir, key: key, precondition: precondition)
    }

    public func delete(_ key: String) async throws {
        if unlink(path(key)) != 0 && errno != ENOENT {
            throw LetheError.io("cannot delete", at: key, errno: errno)
        }
        var dir = Self.dirname(path(key))
        // Folders the delete leaves empty go too, up to the root: a folder named after a
        // partition value (`user_id=u-42/`) must not outlive the subject's last file.
        while dir.count > root.count, dir.hasPrefix(root + "/"), rmdir(dir) == 0 {
            dir = Self.dirname(dir)
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    static func dirname(_ p: String) -> String {
        guard let i = p.lastIndex(of: "/") else { return "." }
        return i == p.startIndex ? "/" : String(p[..<i])
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
}

final class LocalReadStream: ObjectReadStream {
    private var fd: Int32
    private let key: String
    private let chunkSize: Int

    init(fd: Int32, key: String, chunkSize: Int) { self.fd = fd; self.key = key; self.chunkSize = chunkSize }
    deinit { close() }

    func next() async throws -> [UInt8]? {
        guard fd >= 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: chunkSize)
        let n = try buf.withUnsafeMutableBytes { b -> Int in
            while true {
                let n = Glibc.read(fd, b.baseAddress!, b.count)
                if n < 0 { if errno == EINTR { continue }; throw LetheError.io("read failed", at: key, errno: errno) }
                return n
            }
        }
        if n == 0 { return nil }
        if n < buf.count { buf.removeSubrange(n...) }
        return buf
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

final class LocalWriteStream: ObjectWriteStream {
    private var fd: Int32
    private let tmp: String, target: String, dir: String, key: String
    private let precondition: WritePrecondition
    private var finished = false

    init(fd: Int32, tmp: String, target: String, dir: String, key: String, precondition: WritePrecondition) {
        self.fd = fd; self.tmp = tmp; self.target = target; self.dir = dir; self.key = key; self.precondition = precondition
    }
    deinit { abort() }

    func write(_ bytes: [UInt8]) async throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }
    func write(_ bytes: UnsafeRawBufferPointer) async throws { try writeAll(bytes) }

    private func writeAll(_ b: UnsafeRawBufferPointer) throws {
        Swift.precondition(!finished, "write after commit/abort")
        var done = 0
        while done < b.count {
            let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
            if n < 0 { if errno == EINTR { continue }; throw LetheError.io("write failed", at: key, errno: errno) }
            done += n
        }
    }

    func commit() async throws -> ObjectInfo {
        Swift.precondition(!finished, "commit twice")
        if fsync(fd) != 0 { let e = errno; abort(); throw LetheError.io("fsync failed", at: key, errno: e) }
        Glibc.close(fd); fd = -1
        // Check the precondition as late as possible, just before the rename.
        var st = stat()
        let exists = stat(target, &st) == 0
        switch precondition {
        case .none: break
        case .absent:
            // link() fails if the target exists: an atomic create-exclusive.
            if link(tmp, target) != 0 {
                let e = errno
                abort()
                if e == EEXIST { throw LetheError(.conflict, "object already exists", at: key) }
                throw LetheError.io("cannot create", at: key, errno: e)
            }
            unlink(tmp)
            finished = true
            syncDir()
            return try headTarget()
        case .matches(let version):
            let current = exists ? LocalObjectStore.info(key: key, st).version : "absent"
            if current != version {
                abort()
                throw LetheError(.conflict, "object changed while it was being rewritten (expected version \(version), found \(current))", at: key)
            }
        }
        if rename(tmp, target) != 0 { let e = errno; abort(); throw LetheError.io("rename failed", at: key, errno: e) }
        finished = true
        syncDir()
        return try headTarget()
    }

    private func syncDir() {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); Glibc.close(dfd) }
    }

    private func headTarget() throws -> ObjectInfo {
        var st = stat()
        guard stat(target, &st) == 0 else { throw LetheError.io("written object vanished", at: key, errno: errno) }
        return LocalObjectStore.info(key: key, st)
    }

    func abort() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if !finished { unlink(tmp); finished = true }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import LetheCore

/// A file copy of a deletion table, so that a filter starting against a large set
/// reads one file instead of millions of SQLite rows, then catches up with the usual
/// incremental refresh from the snapshot's cursor.
///
/// Layout (little-endian 64-bit words): magic `LETHESS1`, a check value of the stream
/// key (a snapshot made under another `stream.key` is ignored), the cursor (newest
/// `updated_at` it reflects), capacity, count, zero-tag flag, then the table's slots.
/// Written to a temporary file, fsynced and renamed (mode 0600). It holds stream tags
/// only, never raw ids or subject keys.
public enum DeletionSnapshot {
    static let magic: UInt64 = 0x3153_5345_4854_454C  // "LETHESS1"
    /// The snapshot's name in the state folder.
    public static let fileName = "stream-set.snapshot"
    static let headerWords = 6

    /// The check value of a stream key.
    public static func keyCheck(_ key: SipHash24) -> UInt64 { key.hash(Array("lethe deletion snapshot".utf8)) }

    /// Writes `set` with its cursor; errors are returned, not thrown (a snapshot is an optimisation).
    @discardableResult
    public static func save(_ set: DeletionSet, cursor: Int64, key: SipHash24, to path: String) -> Bool {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { return false }
        var ok = true
        let header: [UInt64] = [
            magic, keyCheck(key), UInt64(bitPattern: cursor), UInt64(set.capacityForSnapshot),
            UInt64(set.count), set.hasZeroForSnapshot ? 1 : 0,
        ]
        ok = header.withUnsafeBytes { writeAll(fd, $0.baseAddress!, $0.count) }
        if ok { ok = writeAll(fd, UnsafeRawPointer(set.slotsForSnapshot), set.capacityForSnapshot * 8) }
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        if ok { ok = rename(tmp, path) == 0 }
        if !ok { unlink(tmp) }
        return ok
    }

    /// Reads a snapshot made under `key`; nil if absent, of another key, or damaged.
    public static func load(path: String, key: SipHash24) -> (set: DeletionSet, cursor: Int64)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var header = [UInt64](repeating: 0, count: headerWords)
        let hn = header.withUnsafeMutableBytes { readAll(fd, $0.baseAddress!, $0.count) }
        guard hn, header[0] == magic, header[1] == keyCheck(key) else { return nil }
        let capacity = Int(truncatingIfNeeded: header[3]), count = Int(truncatingIfNeeded: header[4])
        var st = stat()
        guard fstat(fd, &st) == 0, capacity >= 8, count >= 0, count <= capacity,
            Int(st.st_size) == (headerWords + capacity) * 8
        else { return nil }
        guard
            let set = DeletionSet(
                snapshotCapacity: capacity, count: count, hasZero: header[5] == 1,
                fill: { p in
                    readAll(fd, UnsafeMutableRawPointer(p), capacity * 8)
                })
        else { return nil }
        return (set, Int64(bitPattern: header[2]))
    }

    private static func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Bool {
        var done = 0
        while done < n {
            let w = write(fd, p + done, n - done)
            if w < 0 { if errno == EINTR { continue }; return false }
            done += w
        }
        return true
    }

    private static func readAll(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Bool {
        var done = 0
        while done < n {
            let r = read(fd, p + done, n - done)
            if r < 0 { if errno == EINTR { continue }; return false }
            if r == 0 { return false }
            done += r
        }
        return true
    }
}

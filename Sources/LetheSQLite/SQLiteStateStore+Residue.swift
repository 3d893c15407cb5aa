import Foundation
import LetheCore
public import LetheCatalog

/// The residue scan of a local state folder: every file under it, byte for byte (the database,
/// its write-ahead log, key files, snapshots), for raw ids that should be gone.
public struct StateFolderScanner: StateResidueScanner {
    public let folder: String
    public init(folder: String) { self.folder = folder }

    public func search(for needles: [[UInt8]]) throws -> (files: Int, hits: [[UInt8]: [String]]) {
        try Self.searchFolder(folder, for: needles)
    }

    /// The files of the state folder read through a child process (`cat`): the SQLite files
    /// (`lethe.sqlite`, `-wal`, `-shm`, `-journal`) are open in this process, and opening and
    /// closing them here would drop the POSIX locks SQLite holds on them (SQLite's documented
    /// hazard: another process could then write under us).
    static func isLiveDatabaseFile(_ name: String) -> Bool {
        name.hasPrefix(SQLiteStateStore.fileName)
    }

    /// Searches every file under a folder for byte strings (each at least `minimumNeedle` long)
    /// in one pass per file; returns the number of files and, per needle, the relative paths
    /// holding it. The SQLite files are read by a child process (see `isLiveDatabaseFile`).
    public static func searchFolder(_ folder: String, for needles: [[UInt8]]) throws -> (files: Int, hits: [[UInt8]: [String]]) {
        var scanned = 0
        var hits: [[UInt8]: [String]] = [:]
        guard let e = FileManager.default.enumerator(atPath: folder) else { return (0, [:]) }
        let longest = needles.map(\.count).max() ?? 0
        let set = NeedleSet(needles.filter { $0.count >= Self.minimumNeedle }, wordBounded: true)
        while let rel = e.nextObject() as? String {
            let path = folder + "/" + rel
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            var carry: [UInt8] = []
            var seen = Set<[UInt8]>()
            let consume: ([UInt8]) -> Void = { chunk in
                let buf = carry + chunk
                seen.formUnion(set.matches(in: buf))
                carry = Array(buf.suffix(max(0, longest - 1)))
            }
            let name = (rel as NSString).lastPathComponent
            if isLiveDatabaseFile(name) {
                guard try readThroughChild(path, consume) else { continue }
            } else {
                guard let h = FileHandle(forReadingAtPath: path) else { continue }
                defer { try? h.close() }
                while true {
                    let chunk = h.readData(ofLength: 4 << 20)
                    if chunk.isEmpty { break }
                    consume(Array(chunk))
                }
            }
            scanned += 1
            for n in seen { hits[n, default: []].append(rel) }
        }
        return (scanned, hits)
    }

    /// Streams a file's bytes from `cat` in a child process. False when the file vanished
    /// meanwhile (e.g. a `-journal` or `-wal` removed at a checkpoint).
    static func readThroughChild(_ path: String, _ consume: ([UInt8]) -> Void) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/cat")
        p.arguments = ["--", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw LetheError(.io, "cannot start /bin/cat to read the state database for the residue scan: \(error)", at: path)
        }
        let h = pipe.fileHandleForReading
        while true {
            let chunk = h.readData(ofLength: 4 << 20)
            if chunk.isEmpty { break }
            consume(Array(chunk))
        }
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            if !FileManager.default.fileExists(atPath: path) { return false }
            throw LetheError(.io, "the residue scan could not read the state file (cat exited \(p.terminationStatus))", at: path)
        }
        return true
    }
}

extension SQLiteStateStore {
    /// The state folder's scanner (nil for an in-memory store).
    public var residueScanner: (any StateResidueScanner)? {
        databasePath == ":memory:" ? nil : StateFolderScanner(folder: (databasePath as NSString).deletingLastPathComponent)
    }
}

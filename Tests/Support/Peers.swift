public import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The Python peers of the interoperability tests (pyarrow, DuckDB, delta-rs), run
/// from the project's venv that `scripts/bootstrap --python` creates.
public enum Peers {
    /// The package root, derived from this file's path.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let pythonPath = root.appendingPathComponent(".venv/bin/python").path

    /// A script under `scripts/`.
    public static func script(_ name: String) -> String { root.appendingPathComponent("scripts/" + name).path }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs the venv's Python with `arguments`; returns its standard output. Fails,
    /// never skips, when the venv is missing, and names `what` when the run fails.
    @discardableResult
    public static func python(_ arguments: [String], what: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: pythonPath) else {
            throw Failure(description: "\(what) needs \(pythonPath) (pyarrow, DuckDB, delta-rs): run `scripts/bootstrap --python`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pythonPath)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = readAll(out.fileHandleForReading.fileDescriptor)
        let e = readAll(err.fileHandleForReading.fileDescriptor)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(
                description: "\(what) failed (exit \(p.terminationStatus)):\n"
                    + String(decoding: e, as: UTF8.self) + String(decoding: o, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }

    /// Reads a pipe to its end, retrying reads a signal interrupts (Foundation's
    /// `readDataToEndOfFile` traps on EINTR, which other tests' signal handlers cause).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out += buf[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            return out
        }
    }
}

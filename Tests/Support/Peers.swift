import Foundation

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
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(what) failed (exit \(p.terminationStatus)):\n"
                          + String(decoding: e, as: UTF8.self) + String(decoding: o, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }
}

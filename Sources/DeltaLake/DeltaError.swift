import LetheCore

/// Delta errors are `LetheError`s located at `table@vVERSION` or `table/_delta_log/FILE`.
enum DeltaError {
    static func corrupt(_ table: String, _ message: String, file: String? = nil) -> LetheError {
        LetheError(.corrupt, message, at: file.map { "\(table)/_delta_log/\($0)" } ?? table)
    }
    static func unsupported(_ table: String, _ message: String) -> LetheError {
        LetheError(.unsupported, message, at: table)
    }
}

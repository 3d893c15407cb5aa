import Foundation

/// Test corpora this project did not write. delta-rs's test tables come from the deltalake 1.6.6 sdist on
/// PyPI, which `scripts/corpus-delta --fetch-only` (run by `scripts/test` before the Swift tests) puts under
/// `.fixtures/`; a development machine's `/work/corpora` copy is used when the fetched one is absent.
public enum Corpora {
    /// delta-rs's `crates/test/tests/data` (nil when neither copy exists: run `scripts/corpus-delta --fetch-only`).
    public static let deltaRs: String? = {
        let fetched = Peers.root.appendingPathComponent(".fixtures/deltalake-1.6.6/crates/test/tests/data").path
        return [fetched, "/work/corpora/delta-rs"].first { FileManager.default.fileExists(atPath: $0) }
    }()

    /// A table of delta-rs's corpus; throws naming the fetch command when the corpus is missing.
    public static func deltaRsTable(_ name: String) throws -> String {
        guard let root = deltaRs else {
            throw Peers.Failure(description: "delta-rs's test tables are missing: run scripts/corpus-delta --fetch-only")
        }
        return root + "/" + name
    }

    /// Apache parquet-testing's `data/` folder (pinned commit, `scripts/corpus-parquet --fetch-only` puts it
    /// under `.fixtures/`); a development machine's `/work/corpora` copy is used when the fetched one is absent.
    public static let parquetTesting: String? = {
        let fetched = Peers.root.appendingPathComponent(".fixtures/parquet-testing/data").path
        return [fetched, "/work/corpora/parquet-testing/data"].first { FileManager.default.fileExists(atPath: $0) }
    }()

    /// parquet-testing's `data/`; throws naming the fetch command when it is missing.
    public static func parquetTestingData() throws -> String {
        guard let root = parquetTesting else {
            throw Peers.Failure(description: "Apache parquet-testing's files are missing: run scripts/corpus-parquet --fetch-only")
        }
        return root
    }
}

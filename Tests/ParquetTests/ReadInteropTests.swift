import Foundation
import Testing
@testable import Parquet

@Suite struct ReadInteropTests {
    @Test func everyFixtureReadsLikePyarrow() throws {
        let list = try fixtures()
        #expect(list.count >= 20)
        for f in list {
            let file = try ParquetFile(source: try LocalFileSource(path: f.path), name: f.name)
            let expected = try expectedColumns(f)
            #expect(file.numRows == Int64(expected.numRows), "\(f.name)")
            #expect(file.schema.columns.count == expected.columns.count, "\(f.name)")
            let got = try readAllProjections(file)
            for (c, exp) in expected.columns.enumerated() where c < got.count {
                #expect(file.schema.columns[c].dottedPath == exp.path, "\(f.name)")
                #expect(
                    "\(file.schema.columns[c].physicalType)".uppercased().replacingOccurrences(of: "LENBYTE", with: "_LEN_BYTE_").replacingOccurrences(
                        of: "BYTEARRAY", with: "BYTE_ARRAY") == exp.physical, "\(f.name) \(exp.path)")
                if got[c] != exp.rows {
                    let firstBad = zip(got[c], exp.rows).enumerated().first { $0.element.0 != $0.element.1 }
                    Issue.record(
                        "\(f.name) column \(exp.path): \(got[c].count) rows vs \(exp.rows.count); first difference at row \(firstBad?.offset ?? -1): \(firstBad?.element.0.description ?? "-") vs \(firstBad?.element.1.description ?? "-")"
                    )
                }
            }
        }
    }
}

import Testing
import LetheTesting

@Test(arguments: FormatFixture.all, RecordFormatContract.Check.allCases)
func recordFormatContract(_ fixture: FormatFixture, _ check: RecordFormatContract.Check) async throws {
    try await RecordFormatContract.run(check, fixture)
}

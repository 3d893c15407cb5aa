import Testing
@testable import Parquet

@Test func moduleLoads() { #expect(Bool(true)) }

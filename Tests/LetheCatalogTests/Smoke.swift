import Testing
@testable import LetheCatalog

@Test func moduleLoads() { #expect(Bool(true)) }

import Testing
@testable import LetheStream

@Test func moduleLoads() { #expect(Bool(true)) }

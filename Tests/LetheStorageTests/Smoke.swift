import Testing
@testable import LetheStorage

@Test func moduleLoads() { #expect(Bool(true)) }

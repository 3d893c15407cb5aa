import Testing
@testable import LetheEngine

@Test func moduleLoads() { #expect(Bool(true)) }

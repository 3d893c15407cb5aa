import Testing
@testable import LetheCore

@Test func moduleLoads() { #expect(Bool(true)) }

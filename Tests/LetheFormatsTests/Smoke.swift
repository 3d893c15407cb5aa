import Testing
@testable import LetheFormats

@Test func moduleLoads() { #expect(Bool(true)) }

import Testing
@testable import LetheCore

/// Values written as text by other tools (Delta partition values, Hive folders) in the
/// canonical form of their column's type.
@Suite struct CanonicalValueTests {
    func c(_ text: String, _ type: CanonicalType) -> String? {
        CanonicalValue.fromText(text, as: type).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func deltaTypes() {
        #expect(CanonicalType(deltaType: "string") == .string)
        #expect(CanonicalType(deltaType: "long") == .integer && CanonicalType(deltaType: "byte") == .integer)
        #expect(CanonicalType(deltaType: "decimal(10,2)") == .decimal(scale: 2))
        #expect(CanonicalType(deltaType: "decimal(38, 0)") == .decimal(scale: 0))
        #expect(CanonicalType(deltaType: "timestamp") == .timestamp(digits: 6, utc: true))
        #expect(CanonicalType(deltaType: "timestamp_ntz") == .timestamp(digits: 6, utc: false))
        #expect(CanonicalType(deltaType: "date") == .date)
        #expect(CanonicalType(deltaType: "struct") == nil && CanonicalType(deltaType: "decimal(x,2)") == nil)
    }

    @Test func integersAndBooleans() {
        #expect(c("2021", .integer) == "2021")
        #expect(c("007", .integer) == "7")
        #expect(c("+5", .integer) == "5")
        #expect(c("-0", .integer) == "0")
        #expect(c("-654807448", .integer) == "-654807448")
        #expect(c("1.5", .integer) == nil && c("", .integer) == nil && c("12a", .integer) == nil)
        #expect(c("TRUE", .boolean) == "true" && c("false", .boolean) == "false" && c("yes", .boolean) == nil)
    }

    @Test func decimals() {
        #expect(c("111.11", .decimal(scale: 2)) == "111.11")
        #expect(c("1.5", .decimal(scale: 2)) == "1.50")
        #expect(c("1.50", .decimal(scale: 2)) == "1.50")
        #expect(c("-0.05", .decimal(scale: 2)) == "-0.05")
        #expect(c("-.5", .decimal(scale: 1)) == "-0.5")
        #expect(c("42", .decimal(scale: 0)) == "42")
        #expect(c("0042.000", .decimal(scale: 0)) == "42")
        #expect(c("1.5E+2", .decimal(scale: 2)) == "150.00")
        #expect(c("15E-3", .decimal(scale: 3)) == "0.015")
        #expect(c("-0.00", .decimal(scale: 2)) == "0.00")
        #expect(c("1.234", .decimal(scale: 2)) == nil)  // would lose a digit
        #expect(c("abc", .decimal(scale: 2)) == nil && c("1.2.3", .decimal(scale: 2)) == nil)
    }

    @Test func floatingPoint() {
        #expect(c("10.0", .double) == "10.0")
        #expect(c("9.9", .double) == "9.9")
        #expect(c("2021", .double) == "2021.0")
        #expect(c("NaN", .double) == "nan")
        #expect(c("-Infinity", .double) == "-inf")
        #expect(c("0.1", .float) == "0.1")
        #expect(c("x", .double) == nil)
    }

    @Test func datesAndTimestamps() {
        #expect(c("2021-01-03", .date) == "2021-01-03")
        #expect(c("2021-1-3", .date) == "2021-01-03")
        #expect(c("2021-02-30", .date) == nil && c("2021-13-01", .date) == nil && c("20210103", .date) == nil)
        #expect(c("0000-01-01", .date) == "0000-01-01")
        #expect(c("10000-01-01", .date) == "+10000-01-01")
        #expect(c("-0001-12-31", .date) == "-0001-12-31")
        let ts = CanonicalType.timestamp(digits: 6, utc: true)
        #expect(c("2021-01-03 04:05:06.123", ts) == "2021-01-03T04:05:06.123Z")
        #expect(c("2021-01-03 04:05:06", ts) == "2021-01-03T04:05:06Z")
        #expect(c("2021-01-03T04:05:06.123000Z", ts) == "2021-01-03T04:05:06.123Z")
        #expect(c("1970-01-01 00:00:00.123456", ts) == "1970-01-01T00:00:00.123456Z")
        #expect(c("2021-01-03T01:00:00+02:00", ts) == "2021-01-02T23:00:00Z")
        #expect(c("1970-01-01T00:00:00-00:30", ts) == "1970-01-01T00:30:00Z")
        #expect(c("2021-01-03 25:00:00", ts) == nil && c("2021-01-03", ts) == nil)
        let ntz = CanonicalType.timestamp(digits: 6, utc: false)
        #expect(c("2021-01-03 04:05:06.000001", ntz) == "2021-01-03T04:05:06.000001")
        #expect(c("2021-01-03 04:05:06.1234567", ntz) == "2021-01-03T04:05:06.123456")
        #expect(c("12:34:56.780", .time(digits: 3)) == "12:34:56.78")
    }

    @Test func uuidsStringsAndBinary() {
        #expect(c("123E4567E89B12D3A456426614174000", .uuid) == "123e4567-e89b-12d3-a456-426614174000")
        #expect(c("123e4567-e89b-12d3-a456-426614174000", .uuid) == "123e4567-e89b-12d3-a456-426614174000")
        #expect(c("123e4567", .uuid) == nil)
        #expect(c("A/A", .string) == "A/A")
        #expect(CanonicalValue.fromText("\u{1}\u{2}\u{FF}", as: .binary) == [1, 2, 255])
    }

    @Test func renderers() {
        #expect(CanonicalValue.date(days: 18630) == Array("2021-01-03".utf8))
        #expect(CanonicalValue.date(days: -719_529) == Array("-0001-12-31".utf8))
        #expect(CanonicalValue.timestamp(seconds: -1, fraction: 5, fractionDigits: 1, maxDigits: 6, utc: true) == Array("1969-12-31T23:59:59.5Z".utf8))
    }
}

import Testing
@testable import LetheCore

// Issue 15: `erase`, `mask` and `schema` in lethe.yaml.

private func parse(_ dataset: String) throws -> LakeConfig {
    try LakeConfig.parse("lake: l\ndatasets:\n  - name: d\n    path: d\n" + dataset, file: "lethe.yaml", baseDir: "/t")
}

@Test func eraseAndMaskAreReadWithTheirRules() throws {
    let c = try parse(
        """
            format: jsonl
            subject: user_id
            pii: [email, ip, phone, user.name]
            erase: mask
            mask: {email: null, ip: redact, user_id: hash, phone: {literal: "n/a"}, user.name: blank}

        """)
    let d = c.datasets[0]
    #expect(d.erase == .mask)
    #expect(d.mask[FieldPath("email")] == .null && d.mask[FieldPath("ip")] == .redact && d.mask[FieldPath("user_id")] == .hash)
    #expect(d.mask[FieldPath("phone")] == .literal("n/a") && d.mask[FieldPath("user.name")] == .blank)
    #expect(d.maskedFields.map(\.field.description) == ["user_id", "email", "ip", "phone", "user.name"])
    let plain = try parse("    format: csv\n    subject: id\n    pii: [email]\n")
    #expect(plain.datasets[0].erase == .delete)
    let blank = try parse("    format: csv\n    subject: id\n    pii: [email]\n    erase: blank\n")
    #expect(blank.datasets[0].erase == .blank)
    // An unlisted pii field and the subject field become null.
    let defaults = try parse("    format: jsonl\n    subject: id\n    pii: [email]\n    erase: mask\n")
    #expect(defaults.datasets[0].maskedFields.map(\.rule) == [.null, .null])
}

@Test(arguments: [
    ("    format: jsonl\n    subject: id\n    erase: shred\n", "lethe.yaml:7", "`erase` must be"),
    ("    format: jsonl\n    subject: id\n    mask: {id: hash}\n", "lethe.yaml:7", "needs `erase: mask`"),
    ("    format: jsonl\n    subject: id\n    erase: mask\n    mask: {email: null}\n", "lethe.yaml:8", "neither a `subject` nor a `pii`"),
    ("    format: jsonl\n    subject: id\n    erase: mask\n    mask: {id: scramble}\n", "lethe.yaml:8", "unknown rule `scramble`"),
    ("    format: jsonl\n    subject: id\n    erase: mask\n    mask: {id: {literal: [1]}}\n", "lethe.yaml:8", "{literal: TEXT}"),
    ("    format: delta\n    subject: id\n    erase: blank\n    deletes_from: change_feed\n", "lethe.yaml:7", "do not go together"),
    ("    format: csv\n    derived_from: [x]\n    rebuild: make\n    erase: mask\n", "lethe.yaml:8", "needs a `subject`"),
    ("    format: jsonl\n    subject: id\n    schema: {age: {type: integer}}\n", "lethe.yaml:7", "unknown type `integer`"),
    ("    format: jsonl\n    subject: id\n    schema:\n      age: {required: yes}\n", "lethe.yaml:8", "true or false"),
    ("    format: jsonl\n    subject: id\n    schema:\n      email: {regex: \"([a-z\"}\n", "lethe.yaml:8", "not a valid regular expression"),
    ("    format: jsonl\n    subject: id\n    schema:\n      country: {enum: []}\n", "lethe.yaml:8", "non-empty list"),
    ("    format: jsonl\n    subject: id\n    schema:\n      country: {max: 3}\n", "lethe.yaml:8", "unknown key `max`"),
])
func badEraseMaskAndSchemaKeysAreOneLineErrorsNamingTheLine(_ text: String, _ location: String, _ message: String) throws {
    do {
        _ = try parse(text)
        Issue.record("accepted: \(text)")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.description.contains(location + ":") && e.description.contains(message), "\(e)")
    }
}

@Test func aSchemaIsReadInOrder() throws {
    let c = try parse(
        """
            format: jsonl
            subject: user_id
            schema:
              user_id: {type: string, required: true}
              age: {type: int}
              country: {enum: [DE, FR]}
              email: {regex: "[^@]+@[^@]+"}

        """)
    let s = try #require(c.datasets[0].schema)
    #expect(s.fields.map(\.field.description) == ["user_id", "age", "country", "email"])
    #expect(s.fields[0].required && s.fields[0].type == .string && s.fields[1].type == .int && !s.fields[1].required)
    #expect(s.fields[2].allowed == ["DE", "FR"] && s.fields[3].regex == "[^@]+@[^@]+")
}

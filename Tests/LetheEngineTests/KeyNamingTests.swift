import LetheCore
import Testing

@testable import LetheEngine

/// `Residue.KeyNaming` (every subject of a batch searched in a key at once) names exactly the
/// subjects `Residue.key` names one by one: ids long and short, as tokens, segments and Hive
/// values (URL-encoded), of the subject's own fields or any field, composite ids never.
@Test func keyNamingForABatchAgreesWithTheKeyCheckOneByOne() {
    let ids = [
        "u-0001234", "u-1", "alice@example.com", "7", "Mino", "a b", "x/y", "779600", "1796004080592",
        "part" + String(UnicodeScalar(UInt8(0x1F))) + "two",
    ]
    var subjects: [String: SubjectID] = [:]
    for (i, id) in ids.enumerated() { subjects["r-\(i)"] = SubjectID(id) }
    let keys = [
        "raw/events/user_id=u-0001234/part-0.parquet", "raw/events/u-1/a.jsonl", "raw/user_id=u-1/x.jsonl",
        "raw/email=alice%40example.com/x.csv", "raw/country=7/x.csv", "raw/user_id=7/x.csv", "raw/Mino.json", "raw/a%20b/x",
        "raw/user_id=a%20b/x", "raw/file-779600.jsonl", "raw/file-1796004080592.jsonl", "raw/u-0001234-backup.jsonl",
        "raw/nothing/here.jsonl", "raw/user_id=u-00012345/x.parquet", "raw/user_id=x%2Fy/z", "raw/7/7/7",
    ]
    for fields in [nil, [FieldPath("user_id")], [FieldPath("email"), FieldPath("user_id")]] as [[FieldPath]?] {
        let naming = Residue.KeyNaming(subjects, fields: fields)
        for key in keys {
            let oneByOne = subjects.filter { Residue.key(key, names: $0.value, fields: fields) }.map(\.key).sorted()
            #expect(naming.subjects(namedBy: key) == oneByOne, "\(key) with fields \(String(describing: fields))")
        }
    }
    // Something is found at all (the check would pass on two empty answers otherwise).
    #expect(Residue.KeyNaming(subjects, fields: nil).subjects(namedBy: "raw/user_id=u-1/x.jsonl") == ["r-1"])
}

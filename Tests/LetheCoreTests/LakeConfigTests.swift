import Testing
@testable import LetheCore

private let good = """
    lake: ./lake
    state: ./.lethe
    datasets:
      - name: gold_daily
        path: gold/daily
        format: csv
        derived_from: [silver_sessions]
        rebuild: "python3 jobs/daily.py"
      - name: raw_events
        path: raw/events
        format: jsonl
        subject: user.id
        pii: [user.email, ip]
      - name: silver_sessions
        path: silver/sessions
        format: csv
        subject: [tenant, user_id]
        derived_from: [raw_events]
    """

@Test func parsesThePRODUCTExampleAndOrdersByLineage() throws {
    let c = try LakeConfig.parse(good, file: "lethe.yaml", baseDir: "/base")
    #expect(c.lake == .folder("/base/lake"))
    #expect(c.state == .folder("/base/.lethe"))
    #expect(c.datasets.map(\.name) == ["raw_events", "silver_sessions", "gold_daily"])
    let raw = try #require(c.dataset(named: "raw_events"))
    #expect(raw.subject == SubjectSpec("user.id"))
    #expect(raw.subject?.fields[0].components.count == 2)
    #expect(raw.pii.count == 2)
    #expect(c.dataset(named: "silver_sessions")?.subject?.isComposite == true)
    #expect(c.downstream(of: ["raw_events"]).map(\.name) == ["silver_sessions", "gold_daily"])
    #expect(c.dataset(named: "gold_daily")?.subject == nil)
    #expect(c.datasets.allSatisfy { !$0.deletesFromChangeFeed })
    let fed = try LakeConfig.parse(
        "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: delta\n    subject: id\n    deletes_from: change_feed\n",
        file: "lethe.yaml", baseDir: "/b")
    #expect(fed.datasets[0].deletesFromChangeFeed)
}

@Test(arguments: [
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subjet: id\n", "unknown key `subjet`", 6),
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: xml\n    subject: id\n", "unknown format `xml`", 5),
    ("lake: x\ndatasets:\n  - name: a\n    format: jsonl\n    subject: id\n", "missing `path`", 3),
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n    derived_from: [nope]\n", "names `nope`", 3),
    (
        "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n    derived_from: [b]\n  - name: b\n    path: b\n    format: jsonl\n    subject: id\n    derived_from: [a]\n",
        "cycle", 3
    ),
    ("lake: x\nextra: 1\ndatasets: []\n", "unknown key `extra`", 2),
    ("datasets: []\n", "missing key `lake`", 1),
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n", "needs `subject`", 3),
    (
        "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n  - name: b\n    path: a/sub\n    format: jsonl\n    subject: id\n",
        "lies inside", 7
    ),
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n    deletes_from: change_feed\n", "needs `format: delta`", 7),
    ("lake: x\ndatasets:\n  - name: a\n    path: a\n    format: delta\n    subject: id\n    deletes_from: spark\n", "must be `change_feed`", 7),
])
func badConfigsNameKeyAndLine(text: String, expected: String, line: Int) {
    do {
        _ = try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/b")
        Issue.record("accepted a bad config: \(expected)")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.message.contains(expected), "\(e)")
        #expect(e.location == "lethe.yaml:\(line)", "\(e)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test func fieldPathsSplitOnDotsWithEscapes() {
    #expect(FieldPath("user.id").components == [Array("user".utf8), Array("id".utf8)])
    #expect(FieldPath("a\\.b.c").components == [Array("a.b".utf8), Array("c".utf8)])
    #expect(FieldPath("a\\.b.c").description == "a\\.b.c")
}

// Issue 10 item 9: a dataset path that leaves the lake, is absolute, or has `.` / empty components is refused,
// naming the file, the line of the `path` value and the key.
@Test(arguments: [
    ("../outside", "`..`"),
    ("raw/../../etc", "`..`"),
    ("/etc", "absolute"),
    ("/", "absolute"),
    ("raw/./events", "`.`"),
    ("./raw/events", "`.`"),
    (".", "`.`"),
    ("raw//events", "empty"),
    ("", "empty"),
])
func datasetPathsStayInsideTheLake(path: String, expected: String) {
    let text = "lake: x\ndatasets:\n  - name: a\n    format: jsonl\n    subject: id\n    path: \"\(path)\"\n"
    do {
        _ = try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/b")
        Issue.record("accepted path \(path)")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.message.contains("`path`") && e.message.contains(expected), "\(e)")
        #expect(e.location == "lethe.yaml:6", "\(e)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test func aTrailingSlashIsTheSameFolder() throws {
    let c = try LakeConfig.parse(
        "lake: x\ndatasets:\n  - name: a\n    path: raw/events/\n    format: jsonl\n    subject: id\n",
        file: "lethe.yaml", baseDir: "/b")
    #expect(c.datasets[0].path == "raw/events")
}

@Test func normalizeIsAPerDatasetOption() throws {
    let c = try LakeConfig.parse(
        "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n    normalize: nfc\n  - name: b\n    path: b\n    format: jsonl\n    subject: id\n",
        file: "lethe.yaml", baseDir: "/b")
    #expect(c.dataset(named: "a")?.normalization == .nfc)
    #expect(c.dataset(named: "b")?.normalization == Normalization.none)
    do {
        _ = try LakeConfig.parse(
            "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: jsonl\n    subject: id\n    normalize: nfkc\n",
            file: "lethe.yaml", baseDir: "/b")
        Issue.record("accepted normalize: nfkc")
    } catch let e as LetheError {
        #expect(e.location == "lethe.yaml:7" && e.message.contains("`normalize`"), "\(e)")
    }
}

// h6: a state folder inside a dataset made `index` read Lethe's own database and keys as lake objects
// (plain open/close of lethe.sqlite in the process that holds it open: SQLite's lock hazard) and quarantine
// them, so every request failed. It is refused, naming the `state` line.
@Test(arguments: [
    ("lake: ./lake\nstate: ./lake/raw/.lethe\n", 2),
    ("lake: ./lake\nstate: /b/lake/raw\n", 2),
    ("lake: ./lake\nstate: ./lake/raw/../raw/x\n", 2),
    ("lake: .\n", 1),  // default state ./.lethe, dataset path .lethe below
])
func aStateFolderInsideADatasetIsRefused(head: String, line: Int) {
    let path = head.hasPrefix("lake: .\n") ? ".lethe" : "raw"
    let text = head + "datasets:\n  - name: a\n    format: jsonl\n    subject: id\n    path: \(path)\n"
    do {
        _ = try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/b")
        Issue.record("accepted a state folder inside dataset `a`: \(head)")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.message.contains("`state`") && e.message.contains("dataset `a`"), "\(e)")
        #expect(e.location == "lethe.yaml:\(line)", "\(e)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test func aStateFolderBesideTheDatasetsIsFine() throws {
    for head in ["lake: ./lake\nstate: ./lake/.lethe\n", "lake: ./lake\nstate: ./lake/rawx\n", "lake: ./lake\n"] {
        let c = try LakeConfig.parse(
            head + "datasets:\n  - name: a\n    path: raw\n    format: jsonl\n    subject: id\n",
            file: "lethe.yaml", baseDir: "/b")
        #expect(c.datasets.count == 1)
    }
}

// h7: a field path with an empty part (`a..b`, `a.`, `.a`) names no field, and a composite subject naming one field
// twice keys every record by a doubled value: both were accepted and matched nothing. Refused in one line naming the
// file, line and field (exit 2).
@Test(arguments: [
    "subject: a..b", "subject: \"a.\"", "subject: .a", "subject: [tenant, tenant]", "subject: [user.id, \"user.id\"]",
    "subject: id\n    pii: [email, \"x..y\"]",
])
func aFieldPathWithAnEmptyPartOrAFieldNamedTwiceIsRefused(subject: String) {
    let text = "lake: ./lake\ndatasets:\n  - name: a\n    path: raw\n    format: jsonl\n    \(subject)\n"
    do {
        _ = try LakeConfig.parse(text, file: "lethe.yaml", baseDir: "/b")
        Issue.record("accepted \(subject)")
    } catch let e as LetheError {
        #expect(e.code == .badInput)
        #expect(e.location?.hasPrefix("lethe.yaml:") == true, "\(e)")
        #expect(!e.description.contains("\n"))
        #expect(e.message.contains("twice") || e.message.contains("not a field path"), "\(e)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test func onlyDeltaKeepsATransactionLogAndOnlyItMayDeclareDeletesFrom() throws {
    #expect(DatasetSpec.Format.allCases.filter(\.hasTransactionLog) == [.delta])
    for f in DatasetSpec.Format.allCases {
        let text = "lake: x\ndatasets:\n  - name: a\n    path: a\n    format: \(f.rawValue)\n    subject: id\n    deletes_from: change_feed\n"
        let parsed = try? LakeConfig.parse(text, file: "l.yaml", baseDir: "/b")
        #expect((parsed?.datasets.first?.deletesFromChangeFeed == true) == f.hasTransactionLog, "\(f)")
    }
}

@Test func sweepRawIDDaysDefaultsTo25AndAcceptsOneToThirty() throws {
    #expect(try LakeConfig.parse(good, file: "lethe.yaml", baseDir: "/base").rawIDDays == 25)
    let c = try LakeConfig.parse("sweep: {raw_id_days: 30}\n" + good, file: "lethe.yaml", baseDir: "/base")
    #expect(c.rawIDDays == 30 && c.rawIDDue(filedAt: 1_000) == 1_000 + 30 * 86_400_000)
    #expect(try LakeConfig.parse("sweep:\n  raw_id_days: 1\n" + good, file: "lethe.yaml", baseDir: "/base").rawIDDays == 1)
}

@Test(arguments: [
    "sweep: {raw_id_days: 0}", "sweep: {raw_id_days: 31}", "sweep: {raw_id_days: ten}", "sweep: {raw_id_days: 2.5}", "sweep: 5", "sweep: {days: 3}",
])
func aBadSweepSettingIsAClearError(_ line: String) throws {
    do {
        _ = try LakeConfig.parse(line + "\n" + good, file: "lethe.yaml", baseDir: "/base")
        Issue.record("accepted: \(line)")
    } catch let e as LetheError {
        #expect(e.code == .badInput && e.message.contains("sweep") && e.location == "lethe.yaml:1")
    }
}

@Test func s3LakesTakeEndpointRegionPathStyleAndProfile() throws {
    let ds = "datasets:\n  - {name: e, path: raw, format: jsonl, subject: u}\n"
    let c = try LakeConfig.parse(
        "lake: s3://bkt/some/prefix\ns3: {endpoint: 'http://127.0.0.1:9000', region: eu-west-3, path_style: false, profile: dev}\n" + ds,
        file: "lethe.yaml", baseDir: "/b")
    guard case .s3(let bucket, let prefix, let endpoint, let region, let pathStyle, let profile) = c.lake else {
        Issue.record("not an S3 lake: \(c.lake)")
        return
    }
    #expect(bucket == "bkt" && prefix == "some/prefix" && endpoint == "http://127.0.0.1:9000" && region == "eu-west-3")
    #expect(pathStyle == false && profile == "dev")
    for bad in ["s3: {path_style: maybe}", "s3: {secret: x}"] {
        #expect(throws: LetheError.self) { try LakeConfig.parse("lake: s3://bkt\n\(bad)\n" + ds, file: "lethe.yaml", baseDir: "/b") }
    }
}

@Test func serveNotifyAndStreamKeysAreReadWithDefaults() throws {
    let ds = "datasets:\n  - {name: a, path: a, format: jsonl, subject: id}\n"
    let plain = try LakeConfig.parse("lake: x\n" + ds, file: "lethe.yaml", baseDir: "/b")
    #expect(plain.serve == ServeConfig() && plain.serve.host == "127.0.0.1" && plain.serve.runEvery == 600)
    #expect(plain.notify == NotifyConfig() && plain.streamSink == nil && plain.notify.keepDeliveredDays == 7)
    let text = """
        lake: x
        serve: {host: 0.0.0.0, port: 9443, run_every: 0, batch_max: 500, deadline_days: 20, public_url: "https://l.example", tls: {cert: c.pem, key: k.pem}}
        notify:
          webhooks: [{url: "http://127.0.0.1:9/h", secret_env: HOOK, events: [verified, failed]}, {url: "https://x/y", secret_env: H2}]
          email: {smtp: "smtp://127.0.0.1:2525", from: lethe@example.com, approvers: [bob@example.com]}
          keep_delivered_days: 30
        stream: {redis: "redis://127.0.0.1:6379"}

        """
    let c = try LakeConfig.parse(text + ds, file: "lethe.yaml", baseDir: "/b")
    #expect(c.serve.host == "0.0.0.0" && c.serve.port == 9443 && c.serve.runEvery == 0 && c.serve.batchMax == 500)
    #expect(c.serve.deadlineDays == 20 && c.serve.publicURL == "https://l.example")
    #expect(c.serve.tls == ServeConfig.TLSFiles(cert: "/b/c.pem", key: "/b/k.pem"))
    #expect(c.notify.webhooks.map(\.events) == [["verified", "failed"], []] && c.notify.webhooks[1].secretEnv == "H2")
    #expect(c.notify.email == NotifyConfig.Email(smtp: "smtp://127.0.0.1:2525", from: "lethe@example.com", approvers: ["bob@example.com"]))
    #expect(c.streamSink == StreamSinkConfig(redis: "redis://127.0.0.1:6379", key: "lethe:deletions"))
    #expect(c.notify.keepDeliveredDays == 30)
    #expect(try LakeConfig.parse("lake: x\nnotify: {keep_delivered_days: 0}\n" + ds, file: "lethe.yaml", baseDir: "/b").notify.keepDeliveredDays == 0)
    // A bad age: one line naming the key.
    do {
        _ = try LakeConfig.parse("lake: x\nnotify: {keep_delivered_days: -1}\n" + ds, file: "lethe.yaml", baseDir: "/b")
        Issue.record("keep_delivered_days: -1 was accepted")
    } catch let e as LetheError {
        #expect(e.description.contains("notify.keep_delivered_days") && !e.description.contains("\n"), "\(e)")
    }
    for bad in [
        "serve: {port: 70000}", "serve: {run_every: soon}", "serve: {tls: {cert: c.pem}}", "serve: {colour: red}",
        "notify: {webhooks: [{url: \"http://h\"}]}", "notify: {webhooks: [{url: ftp://h, secret_env: S}]}",
        "notify: {webhooks: [{url: \"http://h\", secret_env: S, events: [deleted]}]}",
        "notify: {email: {smtp: \"smtp://h:25\", from: nobody}}", "notify: {email: {smtp: \"smtp://h:25\", from: a@b}}",
        "stream: {key: k}", "stream: {redis: \"http://h\"}", "notify: {keep_delivered_days: week}", "notify: {keep_delivered_days: 1.5}",
    ] {
        #expect(throws: LetheError.self, "\(bad)") { try LakeConfig.parse("lake: x\n\(bad)\n" + ds, file: "lethe.yaml", baseDir: "/b") }
    }
}

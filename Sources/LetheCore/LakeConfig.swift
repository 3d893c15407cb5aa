import Yams
import Foundation

/// One dataset of the lake, as declared in `lethe.yaml`.
public struct DatasetSpec: Sendable, Hashable {
    public enum Format: String, Sendable, CaseIterable { case jsonl, csv, parquet, delta }
    public var name: String
    /// Prefix under the lake root; every object below it belongs to the dataset.
    public var path: String
    public var format: Format
    /// The subject field(s); nil for an aggregate that holds no subject column.
    public var subject: SubjectSpec?
    public var pii: [FieldPath]
    public var derivedFrom: [String]
    /// Command that rebuilds the dataset after its upstream datasets are erased (run in the config's folder).
    public var rebuild: String?
    /// CSV field separator.
    public var delimiter: UInt8
    /// The line of the dataset's entry in the config file.
    public var line: Int
    /// `deletes_from: change_feed`: another tool deletes subjects from this (Delta) table;
    /// `lethe run` reads its change feed and erases them everywhere else.
    public var deletesFromChangeFeed = false
    /// `normalize: nfc`: subject values (and a request's subject, matched here) are NFC-normalised before keying.
    public var normalization: Normalization = .none
    /// `erase: delete | mask | blank`: what erasure does to the subject's records (LakeConfig+Erase.swift).
    public var erase: EraseMode = .delete
    /// `mask: {field: rule}`: with `erase: mask`, how each field is replaced (unlisted subject and pii fields: null).
    public var mask: [FieldPath: MaskRule] = [:]
    /// `schema: {field: {type, required, enum, regex}}`: what a valid record holds (LakeConfig+Schema.swift).
    public var schema: DatasetSchema?

    public init(
        name: String, path: String, format: Format, subject: SubjectSpec?, pii: [FieldPath] = [],
        derivedFrom: [String] = [], rebuild: String? = nil, delimiter: UInt8 = UInt8(ascii: ","), line: Int = 0
    ) {
        self.name = name; self.path = path; self.format = format; self.subject = subject; self.pii = pii
        self.derivedFrom = derivedFrom; self.rebuild = rebuild; self.delimiter = delimiter; self.line = line
    }
}

/// Where the lake lives.
public enum LakeLocation: Sendable, Hashable {
    case folder(String)
    /// `s3://bucket/prefix` with the `s3:` keys: `endpoint` (an S3-compatible server's URL),
    /// `region`, `path_style` (true for path-style addressing), `profile` (of the AWS shared files).
    case s3(bucket: String, prefix: String, endpoint: String?, region: String?, pathStyle: Bool?, profile: String?)
}

/// Where Lethe keeps its state.
public enum StateLocation: Sendable, Hashable {
    case folder(String)
    case postgres(url: String)
}

/// `lethe.yaml`, parsed and checked.
public struct LakeConfig: Sendable {
    /// The config file's path, for messages.
    public var file: String
    /// The config file's folder: relative paths and rebuild commands start here.
    public var baseDir: String
    public var lake: LakeLocation
    public var state: StateLocation
    /// Datasets in lineage order: every dataset after the ones it derives from.
    public var datasets: [DatasetSpec]
    /// How a composite subject is typed on the command line (`tenant|user`).
    public var compositeSeparator: Character
    /// `sweep: {raw_id_days: N}`: a request's sealed raw id is destroyed at the latest N days after
    /// filing (1–30, default 25), swept or not.
    public var rawIDDays: Int = LakeConfig.defaultRawIDDays
    /// `keys: DIR`: the folder of the installation's key files (`secret.key`, `request.key`,
    /// `stream.key`, `audit.key`), resolved from the config's folder. Required with a `postgres://`
    /// state (every machine gets the same folder); nil for a folder state, whose keys live in it.
    public var keysFolder: String?
    /// `s3: {events_queue: URL}`: the SQS queue S3's event notifications of the lake's bucket go to;
    /// `lethe index --watch` then indexes objects as they land (nil: `--watch` polls).
    public var eventsQueue: String?
    /// `watch: {rescan: 10m}`: with `events_queue`, seconds between the full incremental listings
    /// that catch what a lost notification missed.
    public var watchRescan: Double = LakeConfig.defaultWatchRescan
    public static let defaultWatchRescan: Double = 600
    /// `serve: {…}`: how `lethe serve` listens and schedules (defaults when the key is absent).
    public var serve = ServeConfig()
    /// `notify: {webhooks: […], email: {…}}`: where request events are delivered (none by default).
    public var notify = NotifyConfig()
    /// `stream: {redis: URL, key: K}`: the deletion set mirrored to a Redis set (nil: no sink).
    public var streamSink: StreamSinkConfig?
    /// `vault: {…}`: the key-encryption key of crypto-shredding (LakeConfig+Vault.swift).
    public var vault = VaultConfig()

    /// Where the key files live: `keys`, else the state folder (nil for a remote state without `keys`).
    public var keysLocation: String? {
        if let keysFolder { return keysFolder }
        if case .folder(let p) = state { return p }
        return nil
    }

    public static let defaultRawIDDays = 25
    /// The deadline of a raw id filed at `filedAt` (ms).
    public func rawIDDue(filedAt: Int64) -> Int64 { filedAt + Int64(rawIDDays) * 86_400_000 }

    public func dataset(named n: String) -> DatasetSpec? { datasets.first { $0.name == n } }

    /// Datasets reached from `names` through lineage (the datasets derived from them, transitively), in lineage order, excluding `names`.
    public func downstream(of names: Set<String>) -> [DatasetSpec] {
        var reached = names
        var out: [DatasetSpec] = []
        for d in datasets where !names.contains(d.name) {
            if d.derivedFrom.contains(where: reached.contains) {
                reached.insert(d.name)
                out.append(d)
            }
        }
        return out
    }

    static let topKeys: Set<String> = [
        "lake", "state", "keys", "datasets", "s3", "composite_separator", "version", "sweep", "watch", "serve", "notify", "stream", "vault",
    ]
    static let datasetKeys: Set<String> = [
        "name", "path", "format", "subject", "pii", "derived_from", "rebuild", "delimiter", "description", "deletes_from", "normalize",
        "erase", "mask", "schema",
    ]

    /// A dataset `path` as a key prefix under the lake: relative, with no empty, `.` or `..` component
    /// (so that it can neither leave the lake nor name the same objects as another spelling).
    /// A trailing `/` is dropped. Calls `problem` with the reason otherwise; nil for an empty path.
    static func datasetPath(_ text: String, problem: (String) throws -> Void) throws -> String? {
        var p = text
        if p.hasPrefix("/") {
            try problem("`\(text)` is absolute: write it relative to the lake root (`lake`)")
        }
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        if p.isEmpty { return nil }
        for c in p.split(separator: "/", omittingEmptySubsequences: false) {
            switch c {
            case "": try problem("`\(text)` has an empty component (`//`)")
            case ".": try problem("`\(text)` has a `.` component: write the folder once, without `./`")
            case "..": try problem("`\(text)` has a `..` component: a dataset lies inside the lake")
            default: break
            }
        }
        return p
    }

    /// Loads and checks a config file. Errors name the file and line, with code `.badInput`.
    public static func load(path: String) throws -> LakeConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.badInput, "cannot read the config file (run `lethe init` to write one, or pass --config)", at: path)
        }
        let abs = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let base = (abs as NSString).deletingLastPathComponent
        return try parse(String(decoding: data, as: UTF8.self), file: path, baseDir: base)
    }

    /// Parses config text; `baseDir` resolves relative paths.
    public static func parse(_ text: String, file: String, baseDir: String) throws -> LakeConfig {
        let r = ConfigReader(file: file, baseDir: baseDir)
        let root: Node?
        // The basic resolver: the reader takes every scalar as text and parses it itself, so the
        // default resolver's tags (bool, int, float, null, timestamp) would go unused, and its
        // rules are regular expressions compiled on first use (ICU: ~1 ms of every command's start).
        do { root = try Yams.compose(yaml: text, .basic) } catch let e as YamlError {
            throw LetheError(.badInput, "not valid YAML: \(e)", at: file)
        }
        guard let root, let top = root.mapping else { throw r.err("the config must be a mapping with `lake`, `state` and `datasets`", root) }
        let keys = try r.topLevel(top)
        guard let lakeNode = keys.lake else { throw r.err("missing key `lake` (a folder, or s3://bucket/prefix)", root) }
        let lake = try r.lake(lakeNode, s3: keys.s3)
        let stateText = try keys.state.map { try r.str($0, "state") } ?? ".lethe"
        let state = r.state(stateText)
        guard let datasetsNode = keys.datasets else { throw r.err("missing key `datasets` (a list of datasets)", root) }
        guard let seq = datasetsNode.sequence else { throw r.err("`datasets` must be a list", datasetsNode) }
        var specs: [DatasetSpec] = []
        var nodes: [String: Node] = [:]
        for item in seq {
            specs.append(try r.dataset(r.datasetEntry(item), item, declared: &nodes))
        }
        try r.checkDerivationsAndOverlaps(specs, nodes)
        try r.checkStateOutsideDatasets(lake: lake, state: state, stateText: stateText, specs, at: keys.state ?? lakeNode)
        let ordered = try r.lineageOrder(specs, nodes)
        var config = LakeConfig(file: file, baseDir: baseDir, lake: lake, state: state, datasets: ordered, compositeSeparator: keys.separator)
        if let sweep = keys.sweep { config.rawIDDays = try r.sweep(sweep) }
        config.eventsQueue = try r.eventsQueue(keys.s3, lake: lake)
        if let watch = keys.watch { config.watchRescan = try r.watch(watch) }
        if let serve = keys.serve { config.serve = try r.serve(serve) }
        if let notify = keys.notify { config.notify = try r.notify(notify) }
        if let stream = keys.stream { config.streamSink = try r.streamSink(stream) }
        if let vault = keys.vault { config.vault = try r.vault(vault) }
        if let keysNode = keys.keys {
            let text = try r.str(keysNode, "keys")
            guard !text.isEmpty else { throw r.err("`keys` is empty (a folder for the installation's key files)", keysNode) }
            config.keysFolder = r.resolve(text)
            try r.checkStateOutsideDatasets(
                lake: lake, state: .folder(config.keysFolder!), stateText: text, ordered, at: keysNode, what: "keys")
        } else if case .postgres = state {
            throw r.err(
                "`state: postgres://…` needs `keys: DIR`, the folder of the installation's key files (the same on every machine that runs Lethe against this state)",
                keys.state ?? root)
        }
        return config
    }
}

extension DatasetSpec.Format {
    /// The format keeps a transaction log of its own (Delta's `_delta_log`): another tool's
    /// deletions can be followed there (`deletes_from: change_feed`).
    public var hasTransactionLog: Bool { self == .delta }
}

/// The steps of `LakeConfig.parse`: every error names the file and the node's line.
struct ConfigReader {
    let file: String
    let baseDir: String

    func err(_ msg: String, _ node: Node?) -> LetheError {
        LetheError(.badInput, msg, at: node?.mark.map { "\(file):\($0.line)" } ?? file)
    }
    func str(_ n: Node, _ what: String) throws -> String {
        guard let s = n.scalar?.string else { throw err("`\(what)` must be a string", n) }
        return s
    }
    func strList(_ n: Node, _ what: String) throws -> [String] {
        if let s = n.scalar { return s.string.isEmpty ? [] : [s.string] }
        guard let seq = n.sequence else { throw err("`\(what)` must be a string or a list of strings", n) }
        return try seq.map { try str($0, what) }
    }
    func resolve(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var r = baseDir + "/" + p
        if r.hasSuffix("/.") { r.removeLast(2) }
        return (r as NSString).standardizingPath
    }
    /// A dotted field path with no empty component (`a..b`, `.a`, `a.` name no field).
    func fieldPath(_ text: String, _ node: Node, _ key: String) throws -> FieldPath {
        let p = FieldPath(text)
        guard !p.components.contains(where: \.isEmpty), !text.hasSuffix("\\") || text.hasSuffix("\\\\") else {
            throw err("`\(key)`: `\(text)` is not a field path (an empty part between dots; write a literal dot as `\\.`)", node)
        }
        return p
    }

    /// The top-level keys' nodes (`composite_separator` read).
    struct TopLevel {
        var lake: Node?, state: Node?, keys: Node?, datasets: Node?, s3: Node?, sweep: Node?, watch: Node?
        var serve: Node?, notify: Node?, stream: Node?, vault: Node?
        var separator: Character = "|"
    }

    func topLevel(_ top: Node.Mapping) throws -> TopLevel {
        var t = TopLevel()
        for (k, v) in top {
            guard let key = k.scalar?.string else { throw err("keys must be strings", k) }
            switch key {
            case "lake": t.lake = v
            case "state": t.state = v
            case "keys": t.keys = v
            case "datasets": t.datasets = v
            case "s3": t.s3 = v
            case "sweep": t.sweep = v
            case "watch": t.watch = v
            case "serve": t.serve = v
            case "notify": t.notify = v
            case "stream": t.stream = v
            case "vault": t.vault = v
            case "version": break
            case "composite_separator":
                let s = try str(v, key)
                guard s.count == 1, let c = s.first else { throw err("`composite_separator` must be one character", v) }
                t.separator = c
            default:
                throw err("unknown key `\(key)` (known: \(LakeConfig.topKeys.sorted().joined(separator: ", ")))", k)
            }
        }
        return t
    }

    /// `sweep: {raw_id_days: N}`: the raw id deadline in days after filing, 1–30.
    func sweep(_ node: Node) throws -> Int {
        guard let m = node.mapping else { throw err("`sweep` must be a mapping (e.g. `sweep: {raw_id_days: 25}`)", node) }
        var days = LakeConfig.defaultRawIDDays
        for (k, v) in m {
            switch k.scalar?.string {
            case "raw_id_days":
                guard let text = v.scalar?.string, let n = Int(text), (1...30).contains(n) else {
                    throw err(
                        "`sweep.raw_id_days` must be a whole number of days from 1 to 30 (the raw id is destroyed that long after filing, within GDPR's month; default \(LakeConfig.defaultRawIDDays))",
                        v)
                }
                days = n
            default: throw err("unknown key `\(k.scalar?.string ?? "?")` in `sweep` (known: raw_id_days)", k)
            }
        }
        return days
    }

    /// `lake`: a folder (resolved from the config's folder), or `s3://bucket/prefix` with the `s3` keys.
    func lake(_ lakeNode: Node, s3 s3Node: Node?) throws -> LakeLocation {
        let lakeText = try str(lakeNode, "lake")
        guard lakeText.hasPrefix("s3://") else {
            guard !lakeText.isEmpty else { throw err("`lake` is empty", lakeNode) }
            return .folder(resolve(lakeText))
        }
        let rest = lakeText.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1)
        guard let bucket = parts.first, !bucket.isEmpty else { throw err("`lake` s3:// URL needs a bucket", lakeNode) }
        var endpoint: String?, region: String?, profile: String?, pathStyle: Bool?
        if let s3 = s3Node?.mapping {
            for (k, v) in s3 {
                switch k.scalar?.string {
                case "endpoint": endpoint = try str(v, "s3.endpoint")
                case "region": region = try str(v, "s3.region")
                case "profile": profile = try str(v, "s3.profile")
                case "events_queue": break  // read by `eventsQueue`
                case "path_style":
                    switch try str(v, "s3.path_style") {
                    case "true": pathStyle = true
                    case "false": pathStyle = false
                    default: throw err("`s3.path_style` must be true or false", v)
                    }
                default: throw err("unknown key `\(k.scalar?.string ?? "?")` in `s3` (known: endpoint, region, path_style, profile, events_queue)", k)
                }
            }
        }
        return .s3(
            bucket: String(bucket), prefix: parts.count > 1 ? String(parts[1]) : "", endpoint: endpoint, region: region, pathStyle: pathStyle,
            profile: profile)
    }

    /// `s3.events_queue`: an SQS queue URL, for an S3 lake only.
    func eventsQueue(_ s3Node: Node?, lake: LakeLocation) throws -> String? {
        guard let m = s3Node?.mapping, let (_, v) = m.first(where: { $0.key.scalar?.string == "events_queue" }) else { return nil }
        let url = try str(v, "s3.events_queue")
        guard case .s3 = lake else { throw err("`s3.events_queue` needs an S3 lake (`lake: s3://bucket/prefix`)", v) }
        guard url.hasPrefix("https://") || url.hasPrefix("http://"), url.dropFirst(8).contains("/") else {
            throw err("`s3.events_queue` must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/lake-events", v)
        }
        return url
    }

    /// `watch: {rescan: DURATION}`: seconds (`90`, `90s`, `10m`, `1h`), at least 1 s.
    func watch(_ node: Node) throws -> Double {
        guard let m = node.mapping else { throw err("`watch` must be a mapping (e.g. `watch: {rescan: 10m}`)", node) }
        var rescan = LakeConfig.defaultWatchRescan
        for (k, v) in m {
            switch k.scalar?.string {
            case "rescan":
                guard let text = v.scalar?.string, let s = Self.seconds(text), s >= 1 else {
                    throw err("`watch.rescan` must be a duration of at least 1 s (`600`, `90s`, `10m`, `1h`)", v)
                }
                rescan = s
            default: throw err("unknown key `\(k.scalar?.string ?? "?")` in `watch` (known: rescan)", k)
            }
        }
        return rescan
    }

    /// A mapping's entries with string keys; an unknown key is an error naming the known ones.
    func entries(_ node: Node, _ what: String, known: [String], example: String) throws -> [(String, Node)] {
        guard let m = node.mapping else { throw err("`\(what)` must be a mapping (e.g. `\(what): \(example)`)", node) }
        return try m.map { k, v in
            guard let key = k.scalar?.string, known.contains(key) else {
                throw err("unknown key `\(k.scalar?.string ?? "?")` in `\(what)` (known: \(known.joined(separator: ", ")))", k)
            }
            return (key, v)
        }
    }
    func int(_ n: Node, _ what: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let t = n.scalar?.string, let v = Int(t), range.contains(v) else {
            throw err("`\(what)` must be a whole number from \(range.lowerBound) to \(range.upperBound)", n)
        }
        return v
    }

    /// `serve: {host, port, run_every, batch_max, deadline_days, public_url, tls: {cert, key}, oidc: {…}}`.
    func serve(_ node: Node) throws -> ServeConfig {
        var c = ServeConfig()
        let known = ["host", "port", "run_every", "batch_max", "deadline_days", "public_url", "tls", "oidc"]
        for (k, v) in try entries(node, "serve", known: known, example: "{port: 8080, run_every: 10m}") {
            switch k {
            case "host": c.host = try str(v, "serve.host")
            case "port": c.port = try int(v, "serve.port", 0...65535)
            case "run_every":
                guard let text = v.scalar?.string, let s = Self.seconds(text), s >= 0 else {
                    throw err("`serve.run_every` must be a duration (`0` runs approved requests at once, `90s`, `10m`, `1h`)", v)
                }
                c.runEvery = s
            case "batch_max": c.batchMax = try int(v, "serve.batch_max", 1...1_000_000)
            case "deadline_days": c.deadlineDays = try int(v, "serve.deadline_days", 1...366)
            case "public_url": c.publicURL = try str(v, "serve.public_url")
            case "oidc": c.oidc = try oidc(v)
            default:
                var cert: String?, key: String?
                for (tk, tv) in try entries(v, "serve.tls", known: ["cert", "key"], example: "{cert: server.pem, key: server.key}") {
                    if tk == "cert" { cert = resolve(try str(tv, "serve.tls.cert")) } else { key = resolve(try str(tv, "serve.tls.key")) }
                }
                guard let cert, let key else { throw err("`serve.tls` needs both `cert` and `key` (PEM files)", v) }
                c.tls = ServeConfig.TLSFiles(cert: cert, key: key)
            }
        }
        return c
    }

    /// `serve.oidc: {issuer, audience, jwks, role_claim, principal_claim, leeway_seconds}`: issuer, audience
    /// and jwks required; the JWKS file itself is read (and checked) when `lethe serve` starts.
    func oidc(_ node: Node) throws -> ServeConfig.OIDC {
        typealias O = ServeConfig.OIDC
        var issuer: String?, audience: String?, jwks: String?
        var roleClaim = O.defaultRoleClaim, principalClaim = O.defaultPrincipalClaim, leeway = O.defaultLeeway
        let known = ["issuer", "audience", "jwks", "role_claim", "principal_claim", "leeway_seconds"]
        let example = "{issuer: https://idp.example.com/realms/lethe, audience: lethe, jwks: jwks.json}"
        func claim(_ v: Node, _ what: String) throws -> String {
            let name = try str(v, what)
            guard !name.isEmpty, !name.hasPrefix("."), !name.hasSuffix("."), !name.contains("..") else {
                throw err("`\(what)` must be a claim name (a dotted path such as `realm_access.roles` reaches into objects)", v)
            }
            return name
        }
        for (k, v) in try entries(node, "serve.oidc", known: known, example: example) {
            switch k {
            case "issuer":
                let text = try str(v, "serve.oidc.issuer")
                let rest = text.hasPrefix("https://") ? text.dropFirst(8) : text.hasPrefix("http://") ? text.dropFirst(7) : nil
                guard let rest, let host = rest.split(separator: "/", omittingEmptySubsequences: false).first, !host.isEmpty,
                    !text.contains(where: { $0.isWhitespace })
                else {
                    throw err("`serve.oidc.issuer` must be the issuer's URL as its tokens' `iss` claim has it (https://idp.example.com/realms/lethe)", v)
                }
                issuer = text
            case "audience":
                let text = try str(v, "serve.oidc.audience")
                guard !text.isEmpty else { throw err("`serve.oidc.audience` is empty (the `aud` value Lethe's tokens carry, e.g. `lethe`)", v) }
                audience = text
            case "jwks":
                let text = try str(v, "serve.oidc.jwks")
                guard !text.isEmpty else { throw err("`serve.oidc.jwks` is empty (a JSON Web Key Set file)", v) }
                jwks = resolve(text)
            case "role_claim": roleClaim = try claim(v, "serve.oidc.role_claim")
            case "principal_claim": principalClaim = try claim(v, "serve.oidc.principal_claim")
            default: leeway = try int(v, "serve.oidc.leeway_seconds", 0...3600)
            }
        }
        guard let issuer else { throw err("`serve.oidc` needs `issuer`: the URL its tokens' `iss` claim carries", node) }
        guard let audience else { throw err("`serve.oidc` needs `audience`: the value its tokens' `aud` claim must contain", node) }
        guard let jwks else { throw err("`serve.oidc` needs `jwks`: the JSON Web Key Set file of the issuer's public keys", node) }
        return O(issuer: issuer, audience: audience, jwks: jwks, roleClaim: roleClaim, principalClaim: principalClaim, leewaySeconds: leeway)
    }

    /// `notify: {webhooks: [{url, secret_env, events}], email: {smtp, from, approvers}, keep_delivered_days: 7}`.
    func notify(_ node: Node) throws -> NotifyConfig {
        var c = NotifyConfig()
        for (k, v) in try entries(
            node, "notify", known: ["webhooks", "email", "keep_delivered_days"], example: "{webhooks: [{url: …, secret_env: HOOK_SECRET}]}")
        {
            if k == "keep_delivered_days" {
                c.keepDeliveredDays = try int(v, "notify.keep_delivered_days", 0...36_500)
            } else if k == "webhooks" {
                guard let seq = v.sequence else { throw err("`notify.webhooks` must be a list", v) }
                for item in seq {
                    var url: String?, secretEnv: String?, events: [String] = []
                    for (hk, hv) in try entries(item, "notify.webhooks[]", known: ["url", "secret_env", "events"], example: "{url: …, secret_env: …}") {
                        switch hk {
                        case "url": url = try str(hv, "notify.webhooks[].url")
                        case "secret_env": secretEnv = try str(hv, "notify.webhooks[].secret_env")
                        default:
                            events = try strList(hv, "notify.webhooks[].events")
                            for e in events where !NotifyConfig.events.contains(e) {
                                throw err("`notify.webhooks[].events`: unknown event `\(e)` (known: \(NotifyConfig.events.joined(separator: ", ")))", hv)
                            }
                        }
                    }
                    guard let url, url.hasPrefix("http://") || url.hasPrefix("https://") else {
                        throw err("a webhook needs `url`, an http:// or https:// URL", item)
                    }
                    guard let secretEnv, !secretEnv.isEmpty else {
                        throw err("a webhook needs `secret_env`: the environment variable holding its signing secret", item)
                    }
                    c.webhooks.append(NotifyConfig.Webhook(url: url, secretEnv: secretEnv, events: events))
                }
            } else {
                var smtp: String?, from: String?, approvers: [String] = []
                for (ek, ev) in try entries(v, "notify.email", known: ["smtp", "from", "approvers"], example: "{smtp: smtp://127.0.0.1:25, from: …}") {
                    switch ek {
                    case "smtp": smtp = try str(ev, "notify.email.smtp")
                    case "from": from = try str(ev, "notify.email.from")
                    default: approvers = try strList(ev, "notify.email.approvers")
                    }
                }
                guard let smtp, smtp.hasPrefix("smtp://") || smtp.hasPrefix("smtps://") else {
                    throw err("`notify.email` needs `smtp`, an smtp://host:port URL", v)
                }
                guard let from, from.contains("@") else { throw err("`notify.email` needs `from`, an e-mail address", v) }
                guard !approvers.isEmpty else { throw err("`notify.email` needs `approvers`, the addresses purge reports go to", v) }
                c.email = NotifyConfig.Email(smtp: smtp, from: from, approvers: approvers)
            }
        }
        return c
    }

    /// `stream: {redis: URL, key: K}`.
    func streamSink(_ node: Node) throws -> StreamSinkConfig {
        var redis: String?, key = StreamSinkConfig.defaultKey
        for (k, v) in try entries(node, "stream", known: ["redis", "key"], example: "{redis: redis://127.0.0.1:6379, key: lethe:deletions}") {
            if k == "redis" { redis = try str(v, "stream.redis") } else { key = try str(v, "stream.key") }
        }
        guard let redis, redis.hasPrefix("redis://") else { throw err("`stream` needs `redis`, a redis://host:port URL", node) }
        guard !key.isEmpty else { throw err("`stream.key` is empty", node) }
        return StreamSinkConfig(redis: redis, key: key)
    }

    /// `90`, `90s`, `1.5m`, `10m`, `1h` in seconds; nil otherwise.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        if let u = text.last, let scale = units[u] { return Double(text.dropLast()).flatMap { $0.isFinite ? $0 * scale : nil } }
        return Double(text).flatMap { $0.isFinite ? $0 : nil }
    }

    /// `state`: a postgres:// URL, or a folder resolved from the config's folder.
    func state(_ stateText: String) -> StateLocation {
        stateText.hasPrefix("postgres://") || stateText.hasPrefix("postgresql://") ? .postgres(url: stateText) : .folder(resolve(stateText))
    }

    /// One dataset entry's keys, read but not yet checked against each other.
    struct DatasetEntry {
        var name: String?, pathText: String?, pathNode: Node?, format: DatasetSpec.Format?, subject: SubjectSpec?
        var pii: [FieldPath] = [], derived: [String] = [], rebuild: String?, delim = UInt8(ascii: ",")
        var deletesFrom: Node?
        var normalization = Normalization.none
        var erase: (EraseMode, Node)?, mask: (Node, [FieldPath: MaskRule])?, schema: DatasetSchema?
    }

    func datasetEntry(_ item: Node) throws -> DatasetEntry {
        guard let m = item.mapping else { throw err("each dataset must be a mapping with name, path, format", item) }
        var e = DatasetEntry()
        for (k, v) in m {
            guard let key = k.scalar?.string else { throw err("keys must be strings", k) }
            switch key {
            case "name": e.name = try str(v, key)
            case "path": e.pathText = try str(v, key); e.pathNode = v
            case "format":
                let f = try str(v, key)
                guard let fm = DatasetSpec.Format(rawValue: f) else {
                    throw err("unknown format `\(f)` (known: \(DatasetSpec.Format.allCases.map(\.rawValue).joined(separator: ", ")))", v)
                }
                e.format = fm
            case "subject": e.subject = try subject(v, key)
            case "pii": e.pii = try strList(v, key).map { try fieldPath($0, v, key) }
            case "derived_from": e.derived = try strList(v, key)
            case "rebuild": e.rebuild = try str(v, key)
            case "delimiter":
                let d = try str(v, key)
                let u = Array((d == "\\t" ? "\t" : d).utf8)
                guard u.count == 1, u[0] != UInt8(ascii: "\"") else { throw err("`delimiter` must be one ASCII character other than a quote", v) }
                e.delim = u[0]
            case "description": break
            case "erase": e.erase = (try eraseMode(v), v)
            case "mask": e.mask = (v, try maskRules(v))
            case "schema": e.schema = try schema(v)
            case "normalize":
                let n = try str(v, key)
                guard let m = Normalization(rawValue: n) else {
                    throw err("`normalize` must be `nfc` (Unicode canonical composition) or `none`", v)
                }
                e.normalization = m
            case "deletes_from":
                guard try str(v, key) == "change_feed" else {
                    throw err("`deletes_from` must be `change_feed` (another tool deletes from this Delta table; Lethe follows its change feed)", v)
                }
                e.deletesFrom = v
            default:
                throw err("unknown key `\(key)` in a dataset (known: \(LakeConfig.datasetKeys.sorted().joined(separator: ", ")))", k)
            }
        }
        return e
    }

    /// `subject`: one field path or a list of distinct ones.
    func subject(_ v: Node, _ key: String) throws -> SubjectSpec {
        let fields = try strList(v, key)
        guard !fields.isEmpty, !fields.contains(where: \.isEmpty) else { throw err("`subject` is empty", v) }
        let paths = try fields.map { try fieldPath($0, v, key) }
        for (i, p) in paths.enumerated() where paths[..<i].contains(p) {
            throw err("`subject` names the field `\(fields[i])` twice (a composite subject lists each field once)", v)
        }
        return SubjectSpec(fields: paths)
    }

    /// The dataset an entry declares, checked (required keys, keys that need others, a name declared once, its path).
    func dataset(_ e: DatasetEntry, _ item: Node, declared nodes: inout [String: Node]) throws -> DatasetSpec {
        guard let name = e.name, !name.isEmpty else { throw err("a dataset is missing `name`", item) }
        guard let pathText = e.pathText else { throw err("dataset `\(name)` is missing `path`", item) }
        guard let format = e.format else { throw err("dataset `\(name)` is missing `format` (jsonl, csv, parquet, delta)", item) }
        if e.subject == nil && e.rebuild == nil {
            throw err("dataset `\(name)` needs `subject` (the field that names the person) or, for an aggregate without one, `rebuild`", item)
        }
        if e.rebuild != nil && e.derived.isEmpty {
            throw err("dataset `\(name)` has `rebuild` but no `derived_from`: a rebuild runs after its upstream datasets are erased", item)
        }
        if let deletesFrom = e.deletesFrom, !format.hasTransactionLog || e.subject == nil {
            throw err(
                "dataset `\(name)`: `deletes_from: change_feed` needs `format: delta` and a `subject` (the change feed names whom another tool deleted)",
                deletesFrom)
        }
        if nodes[name] != nil { throw err("dataset `\(name)` is declared twice", item) }
        nodes[name] = item
        guard let p = try LakeConfig.datasetPath(pathText, problem: { throw err("dataset `\(name)`: `path` \($0)", e.pathNode ?? item) }) else {
            throw err("dataset `\(name)`: `path` is empty: name a folder under the lake", e.pathNode ?? item)
        }
        if p == DatasetSpec.quarantineRoot || p.hasPrefix(DatasetSpec.quarantineRoot + "/") {
            throw err(
                "dataset `\(name)`: `path` `\(p)` lies in `\(DatasetSpec.quarantineRoot)/`, where Lethe keeps each dataset's quarantined records: choose another folder",
                e.pathNode ?? item)
        }
        var spec = DatasetSpec(
            name: name, path: p, format: format, subject: e.subject, pii: e.pii,
            derivedFrom: e.derived, rebuild: e.rebuild, delimiter: e.delim, line: item.mark?.line ?? 0)
        spec.deletesFromChangeFeed = e.deletesFrom != nil
        spec.normalization = e.normalization
        try applyErase(e, to: &spec, item)
        if e.normalization != .none && e.subject == nil {
            throw err("dataset `\(name)`: `normalize` needs a `subject`", item)
        }
        return spec
    }

    /// Every `derived_from` names a dataset, and no dataset's path lies inside another's.
    func checkDerivationsAndOverlaps(_ specs: [DatasetSpec], _ nodes: [String: Node]) throws {
        for d in specs {
            for up in d.derivedFrom where nodes[up] == nil {
                throw err("dataset `\(d.name)`: `derived_from` names `\(up)`, which is not a dataset", nodes[d.name])
            }
            for o in specs where o.name != d.name {
                if d.path == o.path || d.path.hasPrefix(o.path + "/") || o.path.isEmpty {
                    throw err(
                        "dataset `\(d.name)`: path `\(d.path)` lies inside dataset `\(o.name)` (`\(o.path)`); each object belongs to one dataset", nodes[d.name]
                    )
                }
            }
        }
    }

    /// A state folder inside a dataset would be indexed (and erased from) as lake objects.
    func checkStateOutsideDatasets(
        lake: LakeLocation, state: StateLocation, stateText: String, _ specs: [DatasetSpec], at node: Node, what: String = "state"
    ) throws {
        guard case .folder(let lakeRoot) = lake, case .folder(let stateDir) = state else { return }
        let s = (stateDir as NSString).standardizingPath
        for d in specs {
            let root = ((lakeRoot + "/" + d.path) as NSString).standardizingPath
            if s == root || s.hasPrefix(root + "/") {
                throw err(
                    what == "state"
                        ? "`state` `\(stateText)` lies inside dataset `\(d.name)` (`\(d.path)`): Lethe would read its own database and keys as lake objects; keep the state folder outside every dataset"
                        : "`keys` `\(stateText)` lies inside dataset `\(d.name)` (`\(d.path)`): Lethe would read its own keys as lake objects; keep the keys folder outside every dataset",
                    node)
            }
        }
    }

    /// Lineage order (Kahn), keeping declaration order among equals; a cycle is an error.
    func lineageOrder(_ specs: [DatasetSpec], _ nodes: [String: Node]) throws -> [DatasetSpec] {
        var ordered: [DatasetSpec] = []
        var placed = Set<String>()
        var remaining = specs
        while !remaining.isEmpty {
            guard let i = remaining.firstIndex(where: { $0.derivedFrom.allSatisfy(placed.contains) }) else {
                let names = remaining.map(\.name).sorted().joined(separator: " → ")
                throw err("`derived_from` forms a cycle among: \(names)", nodes[remaining[0].name])
            }
            let d = remaining.remove(at: i)
            placed.insert(d.name)
            ordered.append(d)
        }
        return ordered
    }
}

import ArgumentParser
import Foundation
import LetheCore
import LetheEngine

/// `lethe token create|list|revoke`: the bearer tokens of `lethe serve`.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens for `lethe serve`.",
        discussion: """
            A token is printed once, when it is created, and stored only as a keyed hash: keep it in a
            secret store. Roles: requester (file, read own), approver (approve/reject, read all),
            auditor (audit log, certificates), stream (deletion set), admin (tokens, index).
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a token (printed once).")
        @OptionGroup var global: Global
        @Option(help: "The token's name (unique among live tokens; the principal's name in the audit log).") var name: String
        @Option(help: "requester | approver | auditor | stream | admin") var role: String

        func run() async throws {
            try await guarded {
                guard let r = Role(rawValue: role) else {
                    throw LetheError(.badUsage, "unknown role `\(role)` (--role): one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let lethe = try global.open()
                let (t, secret) = try await conflictIsBadInput { try await lethe.createToken(name: name, role: r) }
                if global.json {
                    out(JSONValue.object(["name": .string(t.name), "role": .string(t.role.rawValue), "token": .string(secret)]).text)
                } else {
                    out(secret)
                    err("token `\(t.name)` (\(t.role.rawValue)) created: it is shown only now; revoke with `lethe token revoke \(t.name)`")
                }
                return 0
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (live and revoked; never a secret).")
        @OptionGroup var global: Global

        func run() async throws {
            try await guarded {
                let all = try await global.open(readOnly: true).tokens()
                if global.json {
                    out(
                        JSONValue.array(
                            all.map { t in
                                .object([
                                    "name": .string(t.name), "role": .string(t.role.rawValue), "live": .bool(t.isLive),
                                    "created_at": .string(time(t.createdAt)),
                                    "revoked_at": t.revokedAt.map { .string(time($0)) } ?? .null,
                                    "last_used_at": t.lastUsedAt.map { .string(time($0)) } ?? .null,
                                ])
                            }
                        ).text)
                } else if all.isEmpty {
                    out("no tokens: create one with `lethe token create --name N --role R`")
                } else {
                    out(
                        table(
                            ["NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
                            all.map {
                                [$0.name, $0.role.rawValue, time($0.createdAt), $0.lastUsedAt.map { time($0) } ?? "-", $0.revokedAt.map { time($0) } ?? "-"]
                            }))
                }
                return 0
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke the live token with this name.")
        @OptionGroup var global: Global
        @Argument(help: "The token's name.") var name: String

        func run() async throws {
            try await guarded {
                let t = try await global.open().revokeToken(name: name)
                if global.json {
                    out(JSONValue.object(["name": .string(t.name), "role": .string(t.role.rawValue), "revoked": .bool(true)]).text)
                } else {
                    out("token `\(t.name)` revoked")
                }
                return 0
            }
        }
    }
}

/// Runs `body`, a `.conflict` (a name taken) reported as bad input (exit 2).
func conflictIsBadInput<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as LetheError where e.code == .conflict {
        throw LetheError(.badInput, e.message)
    }
}

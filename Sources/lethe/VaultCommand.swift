import ArgumentParser
import Foundation
import LetheCore
import LetheEngine
import LetheRuntime

/// `lethe vault status|rotate-kek`: crypto-shredding's key store.
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "Inspect crypto-shredding's key store and rotate its key-encryption key.",
        discussion: """
            Each protected subject has one data key, stored wrapped by the key-encryption key (KEK):
            the key file `vault.key` (default) or an AWS KMS key (`vault: {kek: kms}`). See
            docs/crypto-shredding.md.
            """,
        subcommands: [Status.self, RotateKEK.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Count the data keys by the KEK that wraps them.")
        @OptionGroup var global: Global

        func run() async throws {
            try await guarded {
                let lethe = try global.open(readOnly: true)
                let counts = try await lethe.vaultKeyCounts()
                if global.json {
                    out(JSONValue.object(counts.mapValues { .int($0) }).text)
                } else if counts.isEmpty {
                    out("no data key stored")
                } else {
                    for (name, n) in counts.sorted(by: { $0.key < $1.key }) { out("\(n)\t\(name)") }
                }
                return 0
            }
        }
    }

    struct RotateKEK: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-kek",
            abstract: "Re-wrap every data key under a new key-encryption key.",
            discussion: """
                Why: a backup of the state (SQLite folder, PostgreSQL dump or WAL archive) taken before a
                forget still holds that subject's wrapped data key. Once every live key is wrapped by a new
                KEK and the old KEK is destroyed, such backups open nothing. Rotate on the schedule your
                state backups are kept (at least as often as the erasure deadline).

                Key file (`vault: {kek: file}`, the default):
                  1. a new key is written to `vault.key.next` (created whole, mode 0600);
                  2. every data key is re-wrapped under it, 500 a transaction (`--batch`); each row records
                     its KEK, so `protect`, `reveal` and `run` keep working meanwhile (they open both);
                  3. when no key is left under the old KEK, `vault.key.next` is renamed over `vault.key`.
                  Killed at any step, run the same command again: it finishes the same rotation.
                  Afterwards destroy every copy of the old `vault.key` (backups included): that is what
                  makes old state backups unreadable. Restart long-running `lethe serve`/`worker`.

                AWS KMS (`vault: {kek: kms}`): `--to-kms-key-id NEW` re-wraps each key with KMS `ReEncrypt`
                (the key never leaves KMS), then set `vault.kms_key_id: NEW` in lethe.yaml, and disable and
                schedule deletion of the old KMS key. Run it again if it stops midway: rows already under
                NEW are skipped.

                The key ids inside protected values never change: nothing in the lake is rewritten.
                Example:  lethe vault rotate-kek            (key file)
                          lethe vault rotate-kek --to-kms-key-id alias/lethe-2027
                """)
        @OptionGroup var global: Global
        @Option(name: .customLong("to-kms-key-id"), help: "KMS only: the key id, ARN or alias/NAME to re-wrap the data keys under.")
        var toKMSKeyID: String?
        @Option(help: "Keys re-wrapped per transaction.") var batch: Int = 500

        func validate() throws {
            guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000") }
        }

        func run() async throws {
            try await guarded {
                let config = try LakeConfig.load(path: global.config)
                let lethe = try Runtime.open(config: config)
                let r: KEKRotation
                if let id = toKMSKeyID {
                    r = try await Runtime.rotateKMSKEK(config, lethe: lethe, to: id, batch: batch)
                } else {
                    r = try await Runtime.rotateFileKEK(config, lethe: lethe, batch: batch)
                }
                if global.json {
                    out(
                        JSONValue.object([
                            "from": .string(r.from), "to": .string(r.to), "rewrapped": .int(Int64(r.rewrapped)), "remaining": .int(r.remaining),
                        ]).text)
                } else {
                    out("re-wrapped \(r.rewrapped) data key(s) from `\(r.from)` to `\(r.to)`; \(r.remaining) left under the old KEK")
                    if toKMSKeyID != nil {
                        err(
                            r.remaining == 0
                                ? "now set `vault.kms_key_id: \(toKMSKeyID!)` in \(global.config), then disable the old KMS key"
                                : "run the command again: keys were added under the old KMS key meanwhile")
                    } else {
                        err("the new key is in place (\(config.vaultKeyFile ?? "vault.key")); destroy every copy of the old one")
                    }
                }
                return r.remaining == 0 ? 0 : 1
            }
        }
    }
}

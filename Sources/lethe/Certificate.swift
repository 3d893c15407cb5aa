import ArgumentParser
import Foundation
import LetheCore
import LetheEngine

/// `lethe certificate ID | verify FILE | key`: signed certificates of erasure.
struct Certificate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificate",
        abstract: "Issue, verify and check certificates of erasure.",
        discussion: """
            lethe certificate ID [--out F]           the signed certificate of a verified request
            lethe certificate verify FILE [--key K]  check one (offline with --key): exit 0 valid, 1 invalid, 2 unreadable
            lethe certificate key                    the installation's public key (give it to whoever checks certificates)
            """,
        subcommands: [Issue.self, Verify.self, Key.self], defaultSubcommand: Issue.self)

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "issue", abstract: "The signed certificate of a verified request.")
        @OptionGroup var global: Global
        @Argument(help: "The request id.") var id: String
        @Option(help: "Write the certificate to this file instead of standard output.") var out: String?

        func run() async throws {
            try await guarded {
                let lethe = try global.open(readOnly: true)
                let cert: JSONValue
                do {
                    cert = try await lethe.certificate(id: id)
                } catch let e as LetheError where e.code == .conflict {
                    throw LetheError(.badInput, e.message)
                }
                let text = cert.text + "\n"
                guard let path = out else {
                    FileHandle.standardOutput.write(Data(text.utf8))
                    return 0
                }
                do {
                    // Atomic for a file; a device or FIFO (/dev/null) is written in place, never replaced by a rename.
                    try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: isSpecialFile(path) ? [] : .atomic)
                } catch {
                    throw LetheError(.io, "cannot write the certificate", at: path, cause: error)
                }
                let fp = cert["signature"]?["key_fingerprint"]?.string ?? ""
                if global.json {
                    LetheCLI.out(JSONValue.object(["id": .string(id), "out": .string(path), "key_fingerprint": .string(fp)]).text)
                } else {
                    LetheCLI.out("certificate of \(id) written to \(path) (signed by key \(fp))")
                }
                return 0
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check a certificate's signature: exit 0 valid, 1 invalid (naming why), 2 unreadable.")
        @OptionGroup var global: Global
        @Argument(help: "The certificate file.") var file: String
        @Option(help: "The public key (base64, as `lethe certificate key` prints it, or a file holding it); without it, this installation's.")
        var key: String?

        func run() async throws {
            try await guarded {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw LetheError(.badInput, "cannot read the certificate file", at: file)
                }
                let publicKey: [UInt8]
                if let key {
                    let text = FileManager.default.contents(atPath: key).map { String(decoding: $0, as: UTF8.self) } ?? key
                    guard let k = Lethe.parsePublicKey(text) else {
                        throw LetheError(.badInput, "--key is neither an Ed25519 public key (base64 of 32 bytes) nor a file holding one")
                    }
                    publicKey = k
                } else {
                    publicKey = try global.open(readOnly: true).signingPublicKey
                }
                let problem = Lethe.verifyCertificate(Array(data), publicKey: publicKey)
                let fp = Lethe.keyFingerprint(publicKey)
                if case .malformed? = problem { throw LetheError(.badInput, problem!.description, at: file) }
                if global.json {
                    LetheCLI.out(
                        JSONValue.object([
                            "file": .string(file), "valid": .bool(problem == nil), "key_fingerprint": .string(fp),
                            "problem": problem.map { .string($0.description) } ?? .null,
                        ]).text)
                } else if let problem {
                    err("lethe: \(file): INVALID: \(problem.description)")
                } else {
                    LetheCLI.out("\(file): valid, signed by key \(fp)")
                }
                return problem == nil ? 0 : 1
            }
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "key", abstract: "Print the installation's public key of certificates (base64).")
        @OptionGroup var global: Global

        func run() async throws {
            try await guarded {
                let k = try global.open(readOnly: true).signingPublicKey
                if global.json {
                    LetheCLI.out(
                        JSONValue.object([
                            "alg": .string("Ed25519"), "public_key": .string(Data(k).base64EncodedString()),
                            "key_fingerprint": .string(Lethe.keyFingerprint(k)),
                        ]).text)
                } else {
                    LetheCLI.out(Data(k).base64EncodedString())
                }
                return 0
            }
        }
    }
}

/// Module-level helpers under a name the commands' own `out` options do not shadow.
enum LetheCLI {
    static func out(_ s: String) { print(s) }
}

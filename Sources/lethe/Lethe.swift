import ArgumentParser
import Foundation
import ServiceLifecycle
import LetheCore
import LetheEngine
import LetheRuntime
import LetheStorage
import UnixSignals

@main
struct LetheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lethe",
        abstract: "Find, erase and prove the erasure of one person's data across a data lake.",
        discussion: """
            A typical session:
              lethe init --lake ./lake       write lethe.yaml; describe datasets
              lethe index                    build or refresh the subject index
              lethe locate u-42              where u-42's records are
              lethe forget u-42 --by alice   file an erasure request (planned)
              lethe approve ID --by bob      a second person approves it
              lethe run                      erase, propagate, rebuild, verify
              lethe audit --check            prove the audit log is intact

            Try it on a generated lake: lethe quickstart --dir /tmp/lethe-demo
            Subject ids are taken exactly as typed, never split; ids that are not text, composite
            subjects and id files: see `lethe help forget`.
            Exit codes: 0 success, 1 the work failed, 2 bad usage or input.
            """,
        version: "0.1.0",
        subcommands: [
            Init.self, Quickstart.self, Index.self, Locate.self, Forget.self, Requests.self, Show.self,
            Approve.self, Reject.self, Run.self, Verify.self, Sweep.self, Vacuum.self, Audit.self, Filter.self, Deletions.self,
            Worker.self, Token.self, Certificate.self, Serve.self, Protect.self, Reveal.self, Ingest.self, Validate.self, VaultCommand.self,
        ]
    )
}

extension LetheCommand {
    /// Parses and runs a command. Usage errors (an unknown option, a missing value, a failed
    /// validation) exit 2 like every other bad usage, with one line on stderr — never
    /// argument-parser's 64; help and `--version` exit 0.
    static func main() async {
        ProcessMemory.keepFreedMemory()  // large buffers reused, not zeroed anew by the kernel each time
        do {
            var command = try await asyncParseAsRoot(nil)
            if var c = command as? any AsyncParsableCommand { try await c.run() } else { try command.run() }
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            if code == .validationFailure {
                err("lethe: error: \(message(for: error)) (see `lethe help`)")
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every command takes.
struct Global: ParsableArguments {
    @Option(name: .long, help: "The config file.")
    var config: String = "lethe.yaml"
    @Flag(name: .long, help: "Print machine-readable JSON.")
    var json = false

    /// `readOnly`: the command only reads the state (it works on a state folder it cannot write).
    func open(readOnly: Bool = false) throws -> Lethe {
        try Runtime.open(config: try LakeConfig.load(path: config), readOnly: readOnly)
    }
}

/// Runs a command body, turning Lethe errors into one line on stderr and the contract's exit codes.
func guarded(_ body: () async throws -> Int32) async throws {
    let code: Int32
    do {
        code = try await body()
    } catch let e as LetheError {
        FileHandle.standardError.write(Data("lethe: error: \(e.description)\n".utf8))
        switch e.code {
        case .badInput, .badUsage, .notFound, .unsupported: throw ExitCode(2)
        default: throw ExitCode(1)
        }
    }
    if code != 0 { throw ExitCode(code) }
}

func out(_ s: String) { print(s) }
func err(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Pads a table of strings into aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    var widths = [Int](repeating: 0, count: header.count)
    for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return all.map { r in
        r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

func time(_ ms: Int64) -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// The requester / approver name: --by, else $LETHE_USER, else $USER.
func principal(_ by: String?) -> String {
    if let by, !by.isEmpty { return by }
    let env = ProcessInfo.processInfo.environment
    return env["LETHE_USER"] ?? env["USER"] ?? ""
}

/// Runs long-running services (`index --watch`, `filter --follow`) until they end or SIGTERM/SIGINT
/// shuts them down gracefully (each finishes what it is doing); with `signals: false` the signals keep
/// their default action. Rethrows the first error a service threw.
func runUntilSignalled(_ services: [ServiceGroupConfiguration.ServiceConfiguration], signals: Bool = true) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [], logger: Lethe.defaultLogger()))
    try await group.run()
}

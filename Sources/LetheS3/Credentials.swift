import Foundation
import LetheCore

/// Where AWS settings come from, in the order the AWS CLI and SDKs use: explicit settings
/// (`lethe.yaml`'s `s3:`), then the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`), then the shared files (`AWS_SHARED_CREDENTIALS_FILE`,
/// default `~/.aws/credentials`, sections `[name]`; `AWS_CONFIG_FILE`, default `~/.aws/config`,
/// sections `[profile name]` and `[default]`). Not read (documented): the instance metadata
/// service, SSO, `credential_process`, web identity tokens.
public struct AWSSettings: Sendable, Equatable {
    public var credentials: AWSCredentials
    public var region: String
    /// A custom endpoint (`http://127.0.0.1:9000`), or nil for AWS's own.
    public var endpoint: String?
    /// Where the credentials were found (`environment`, `profile dev in /root/.aws/credentials`…), for messages.
    public var source: String

    /// Resolves the settings. `profile`, `region` and `endpoint` are the explicit ones (nil: not set);
    /// `environment` defaults to the process's.
    /// Throws `.badInput` naming every place looked in when no credentials are found, or when a
    /// named profile does not exist; never shows a secret.
    public static func resolve(
        profile: String? = nil, region: String? = nil, endpoint: String? = nil, service: String = "s3",
        environment: [String: String]? = nil
    ) throws -> AWSSettings {
        let environment = environment ?? ProcessInfo.processInfo.environment
        func env(_ k: String) -> String? { environment[k].flatMap { $0.isEmpty ? nil : $0 } }
        let home = env("HOME") ?? NSHomeDirectory()
        let credentialsFile = env("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        let configFile = env("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        let explicitProfile = profile ?? env("AWS_PROFILE")
        let name = explicitProfile ?? "default"
        let creds = try INI.read(credentialsFile)
        let config = try INI.read(configFile)
        let credSection = creds?[name]
        let configSection = config?[name == "default" ? "default" : "profile " + name] ?? (name == "default" ? nil : config?[name])

        if let p = explicitProfile, profile != nil || env("AWS_ACCESS_KEY_ID") == nil, credSection == nil, configSection == nil {
            throw LetheError.badInput(
                "AWS profile `\(p)` is in neither \(credentialsFile) nor \(configFile)", at: profile != nil ? "lethe.yaml s3.profile" : "AWS_PROFILE")
        }

        var found: (AWSCredentials, String)?
        if profile == nil, let id = env("AWS_ACCESS_KEY_ID") {
            guard let secret = env("AWS_SECRET_ACCESS_KEY") else {
                throw LetheError.badInput("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", at: "environment")
            }
            found = (AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: env("AWS_SESSION_TOKEN")), "environment")
        } else {
            for (section, file) in [(credSection, credentialsFile), (configSection, configFile)] {
                guard let s = section, let id = s["aws_access_key_id"] else { continue }
                guard let secret = s["aws_secret_access_key"] else {
                    throw LetheError.badInput("profile `\(name)` has aws_access_key_id but no aws_secret_access_key", at: file)
                }
                found = (AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: s["aws_session_token"]), "profile \(name) in \(file)")
                break
            }
        }
        guard let (credentials, source) = found else {
            throw LetheError.badInput(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (`s3.profile`, AWS_PROFILE) in \(credentialsFile) or \(configFile)",
                at: "s3")
        }
        let resolvedRegion =
            region ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? configSection?["region"] ?? "us-east-1"
        let serviceKey = "AWS_ENDPOINT_URL_" + service.uppercased()
        let resolvedEndpoint = endpoint ?? env(serviceKey) ?? env("AWS_ENDPOINT_URL") ?? configSection?["endpoint_url"]
        return AWSSettings(credentials: credentials, region: resolvedRegion, endpoint: resolvedEndpoint, source: source)
    }
}

/// The INI dialect of AWS's shared files: `[section]` lines, `key = value` lines, `#` and `;`
/// comments; keys case-sensitive as the CLI reads them; indented lines (nested settings) skipped.
enum INI {
    /// The sections of the file at `path`, or nil when there is no such file.
    static func read(_ path: String) throws -> [String: [String: String]]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.io, "cannot read AWS settings file", at: path)
        }
        return parse(String(decoding: data, as: UTF8.self))
    }

    static func parse(_ text: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        var section: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if raw.first == " " || raw.first == "\t" { continue }
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.first == "#" || line.first == ";" { continue }
            if line.first == "[", line.last == "]" {
                let name = line.dropFirst().dropLast().trimmingWhitespace()
                section = String(name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
                out[section!, default: [:]] = out[section!] ?? [:]
                continue
            }
            guard let s = section, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingWhitespace()
            let value = line[line.index(after: eq)...].trimmingWhitespace()
            out[s, default: [:]][String(key)] = String(value)
        }
        return out
    }
}

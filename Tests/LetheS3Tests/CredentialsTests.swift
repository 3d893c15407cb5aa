import Foundation
import LetheCore
import Testing
@testable import LetheS3

/// AWS settings resolved as the AWS CLI resolves them: explicit > environment > shared files.
@Suite struct CredentialsTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "lethe-aws-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        # comment
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = default/secret+key
        [dev]
        aws_access_key_id=AKIDDEV
        aws_secret_access_key=dev-secret
        aws_session_token = dev-token
        [broken]
        aws_access_key_id = AKIDBROKEN
        """.write(toFile: dir + "/credentials", atomically: true, encoding: .utf8)
        try """
        [default]
        region = eu-west-3
        [profile dev]
        region = ap-southeast-2
        endpoint_url = http://127.0.0.1:9000
        s3 =
          addressing_style = path
        [profile cfgonly]
        aws_access_key_id = AKIDCFG
        aws_secret_access_key = cfg-secret
        """.write(toFile: dir + "/config", atomically: true, encoding: .utf8)
    }

    var files: [String: String] { ["AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials", "AWS_CONFIG_FILE": dir + "/config", "HOME": dir] }

    @Test func environmentCredentialsComeFirst() throws {
        var env = files
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
        env["AWS_SECRET_ACCESS_KEY"] = "env-secret"
        env["AWS_SESSION_TOKEN"] = "env-token"
        env["AWS_PROFILE"] = "dev"
        env["AWS_REGION"] = "us-west-2"
        let s = try AWSSettings.resolve(environment: env)
        #expect(s.credentials == AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: "env-secret", sessionToken: "env-token"))
        #expect(s.region == "us-west-2")
        #expect(s.source == "environment")
        // An explicit profile beats the environment's keys.
        let p = try AWSSettings.resolve(profile: "dev", environment: env)
        #expect(p.credentials.accessKeyID == "AKIDDEV")
        #expect(p.credentials.sessionToken == "dev-token")
    }

    @Test func profilesFromTheSharedFiles() throws {
        let d = try AWSSettings.resolve(environment: files)
        #expect(d.credentials == AWSCredentials(accessKeyID: "AKIDDEFAULT", secretAccessKey: "default/secret+key"))
        #expect(d.region == "eu-west-3")
        #expect(d.endpoint == nil)
        var env = files
        env["AWS_PROFILE"] = "dev"
        let dev = try AWSSettings.resolve(environment: env)
        #expect(dev.credentials.accessKeyID == "AKIDDEV")
        #expect(dev.region == "ap-southeast-2")
        #expect(dev.endpoint == "http://127.0.0.1:9000")
        #expect(try AWSSettings.resolve(profile: "cfgonly", environment: files).credentials.accessKeyID == "AKIDCFG")
        // Explicit settings and service endpoints win.
        env["AWS_ENDPOINT_URL"] = "http://generic:1"
        env["AWS_ENDPOINT_URL_S3"] = "http://s3only:2"
        #expect(try AWSSettings.resolve(environment: env).endpoint == "http://s3only:2")
        #expect(try AWSSettings.resolve(service: "sqs", environment: env).endpoint == "http://generic:1")
        #expect(try AWSSettings.resolve(region: "sa-east-1", endpoint: "http://x:3", environment: env).region == "sa-east-1")
    }

    @Test func clearErrorsWithoutSecrets() throws {
        func message(_ body: () throws -> Void) -> String {
            do {
                try body()
                return ""
            } catch { return "\(error)" }
        }
        let missing = message { _ = try AWSSettings.resolve(profile: "nope", environment: files) }
        #expect(missing.contains("AWS profile `nope`"))
        let broken = message { _ = try AWSSettings.resolve(profile: "broken", environment: files) }
        #expect(broken.contains("no aws_secret_access_key"))
        #expect(!broken.contains("AKIDBROKEN"))
        let none = message { _ = try AWSSettings.resolve(environment: ["HOME": dir + "/empty"]) }
        #expect(none.contains("no AWS credentials"))
        var env = files
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
        let half = message { _ = try AWSSettings.resolve(environment: env) }
        #expect(half.contains("AWS_SECRET_ACCESS_KEY is not"))
        let ok = try AWSSettings.resolve(environment: files)
        #expect(!"\(ok.credentials)".contains("default/secret"))
    }
}

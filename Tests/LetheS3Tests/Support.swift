import Foundation
import LetheCore
import LetheEngine
import LetheRuntime
import LetheTestSupport
@testable import LetheS3

/// A lake on moto opened through `Runtime` from `datasets` (YAML lines), with the bucket made;
/// credentials in the environment as a user would set them. `dir` holds the state.
func openS3Lake(_ moto: MotoServer, bucket: String, prefix: String, dir: String, datasets: String) async throws -> Lethe {
    setenv("AWS_ACCESS_KEY_ID", moto.accessKey, 1)
    setenv("AWS_SECRET_ACCESS_KEY", moto.secretKey, 1)
    let yaml = """
        lake: s3://\(bucket)/\(prefix)
        s3: {endpoint: "\(moto.endpoint)", region: us-east-1}
        state: \(dir)/state
        datasets:
        \(datasets)
        """
    let lethe = try Runtime.open(config: try LakeConfig.parse(yaml, file: dir + "/lethe.yaml", baseDir: dir))
    let r = try await (lethe.store as! S3ObjectStore).client.send("PUT", key: nil, what: "CreateBucket")
    guard r.status == 200 else { throw LetheError(.failure, "create bucket \(bucket): HTTP \(r.status)") }
    return lethe
}

/// A fresh temporary folder, removed by the caller.
func temporaryFolder(_ name: String) throws -> String {
    let dir = NSTemporaryDirectory() + "lethe-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

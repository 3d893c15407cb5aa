"""Real S3 response documents for LetheS3Tests, from moto's S3 server (started in-process on a free
loopback port, stopped at the end): a versioned bucket with odd keys, then raw (unsigned) GETs of
ListObjectsV2 (encoding-type=url, two pages), ListObjectVersions, a NoSuchKey error, and a
DeleteObjects result. Prints one JSON object: the keys, and each response's status and body.
"""
import json
import urllib.request
import urllib.error

import boto3
from moto.server import ThreadedMotoServer

KEYS = ["a b/c+d.json", "caf\u00e9/\u00e9t\u00e9.parquet", "per%cent", "tilde~x", "x&y<z>", "dir/sub/part-0.parquet", "plus+plus", "emoji-\U0001F600"]

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
server.start()
try:
    host, port = server.get_host_and_port()
    base = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=base, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="lake")
    s3.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
    for k in KEYS:
        s3.put_object(Bucket="lake", Key=k, Body=b"v1 " + k.encode())
    s3.put_object(Bucket="lake", Key=KEYS[0], Body=b"v2")
    s3.delete_object(Bucket="lake", Key=KEYS[2])

    def get(path, method="GET", body=None, headers=None):
        req = urllib.request.Request(base + path, method=method, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req) as r:
                return {"status": r.status, "body": r.read().decode()}
        except urllib.error.HTTPError as e:
            return {"status": e.code, "body": e.read().decode()}

    out = {"keys": sorted(k for k in KEYS if k != KEYS[2])}
    out["list1"] = get("/lake?list-type=2&encoding-type=url&max-keys=4")
    import re
    token = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", out["list1"]["body"]).group(1)
    out["list2"] = get("/lake?list-type=2&encoding-type=url&max-keys=4&continuation-token=" + urllib.parse.quote(token, safe=""))
    out["versions"] = get("/lake?versions&encoding-type=url")
    out["missing"] = get("/lake/no/such/key")
    delete = b'<Delete><Quiet>false</Quiet><Object><Key>tilde~x</Key></Object><Object><Key>plus+plus</Key></Object></Delete>'
    import hashlib, base64
    md5 = base64.b64encode(hashlib.md5(delete).digest()).decode()
    out["delete"] = get("/lake?delete", method="POST", body=delete, headers={"Content-MD5": md5, "Content-Type": "application/xml"})
    print(json.dumps(out))
finally:
    server.stop()

"""SigV4 oracle for LetheS3Tests: signs requests with botocore (AWS's own Python signer).

Reads a JSON list of requests on stdin: {method, url, headers: [[name, value]], body (latin-1 text),
time (seconds since 1970), access, secret, token (or null), region, service}; prints a JSON list of
{"authorization": ..., "amz_date": ...} in the same order.
"""
import datetime
import json
import sys
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

out = []
for r in json.load(sys.stdin):
    creds = Credentials(r["access"], r["secret"], r["token"])
    req = AWSRequest(method=r["method"], url=r["url"], headers=dict(map(tuple, r["headers"])), data=r["body"].encode("latin-1"))
    auth = (S3SigV4Auth if r["service"] == "s3" else SigV4Auth)(creds, r["service"], r["region"])
    at = datetime.datetime.fromtimestamp(r["time"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        auth.add_auth(req)
    out.append({"authorization": req.headers["Authorization"], "amz_date": req.headers["X-Amz-Date"]})
print(json.dumps(out))

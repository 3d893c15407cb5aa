"""Starts moto's AWS API server (S3, SQS, KMS, IAM, ...) for Lethe's tests, on a free loopback port.

Prints one JSON line {"endpoint", "access_key", "secret_key"} once it is ready, then serves until its
standard input closes (the test process ending closes it), and stops. With --auth, moto checks every
request's Signature V4 against an IAM user it creates first (moto's INITIAL_NO_AUTH_ACTION_COUNT lets
the setup calls through unsigned): a request signed wrongly gets 403.
"""
import json
import os
import sys

auth = "--auth" in sys.argv
if auth:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
try:
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    access, secret = "testing", "testing"
    if auth:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="lethe")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="lethe", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="lethe")["AccessKey"]
        access, secret = key["AccessKeyId"], key["SecretAccessKey"]
    print(json.dumps({"endpoint": endpoint, "access_key": access, "secret_key": secret}), flush=True)
    sys.stdin.read()
finally:
    server.stop()

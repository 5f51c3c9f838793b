"""moto_server for the stack tests (scripts/local-stacks): IAM enforced on the resources weir uses.

moto can enforce IAM policies on the calls it receives (POST /moto-api/reset-auth), but it
knows the resource of a call only for S3, STS and IAM: a Kinesis, DynamoDB or KMS call is
checked against the resource "*", which no policy naming a stream, a table or a key allows.
This launcher gives those calls their resource, as AWS does:

- Kinesis: the stream (StreamARN, or StreamName or the shard iterator's stream in the caller's
  account and region), or the
  consumer (ConsumerARN) for SubscribeToShard and DescribeStreamConsumer by ARN;
- DynamoDB: the table (TableName);
- KMS: the key (KeyId, an ARN or an id in the caller's account and region);

reads a trust policy's principals as AWS does (an account's root trusts that account's
identities; moto compares the caller's ARN to it literally), reads the inline policies
CloudFormation made, decides KMS calls by the key's policy too (as AWS does: moto reads no
key policy), answers a refused call of those three services in JSON as they do, makes a template's KMS key
with its KeySpec and KeyUsage,

and handles one request at a time: moto's Kinesis loses records when several PutRecords run at
once (../shared/local-aws.md), which an end-to-end check of no loss cannot have.

Run as `python moto_iam.py -H 127.0.0.1 -p PORT` (moto_server's arguments).
"""

import json
import re
import threading

from moto import server
from moto.dynamodb.responses import DynamoHandler
from moto.iam import access_control
from moto.kinesis.models import KinesisBackend
from moto.kinesis.responses import KinesisResponse
from moto.kinesis.utils import decompose_shard_iterator
from moto.kms.models import Key, kms_backends
from moto.kms.responses import KmsResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication


def _kinesis_resource(self):
    consumer = self._get_param("ConsumerARN")
    if consumer:
        return consumer
    stream = self._get_param("StreamARN")
    if stream:
        return stream
    name = self._get_param("StreamName")
    iterator = self._get_param("ShardIterator")
    if iterator and not name:
        name = decompose_shard_iterator(iterator)[0]
    if name:
        return f"arn:aws:kinesis:{self.region}:{self.current_account}:stream/{name}"
    return "*"


def _named_by(parameter, service, kind):
    """The resource a call names by `parameter`: an ARN as it is, a name or id in the
    caller's account and region."""

    def resource(self):
        value = self._get_param(parameter)
        if not value:
            return "*"
        if value.startswith("arn:"):
            return value
        return f"arn:aws:{service}:{self.region}:{self.current_account}:{kind}/{value}"

    return resource


def _check_principal(self, principal):
    """A trust policy's principal, as AWS reads it: an account's root stands for every
    identity of that account; a service principal (ecs-tasks.amazonaws.com) is only that
    service, which no caller here is (moto 5.2.5 fails on it with an error 500)."""
    expected = self._statement.get("Principal")
    if not expected or expected == "*":
        return True
    allowed = expected.get("AWS") if isinstance(expected, dict) else None
    if allowed is None:
        return False
    allowed = [allowed] if isinstance(allowed, str) else allowed
    account = principal.split(":")[4]
    return "*" in allowed or principal in allowed or f"arn:aws:iam::{account}:root" in allowed


access_control.IAMPolicyStatement._check_principal = _check_principal
_policy = access_control.IAMPolicy.__init__


def _any_policy(self, policy):
    """A role's inline policy made by CloudFormation is kept as a dict, which moto 5.2.5's
    enforcement cannot read (KeyError: 'policy_document', an error 500), and a statement
    left out with AWS::NoValue as a null, which it fails on too."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    if isinstance(policy, dict) and "Statement" in policy:
        statements = policy["Statement"]
        if isinstance(statements, list):
            policy = dict(policy, Statement=[s for s in statements if s])
        policy = json.dumps(policy)
    _policy(self, policy)


access_control.IAMPolicy.__init__ = _any_policy
def _identity(arn):
    """The identity a policy names for a caller: an assumed role's session is its role."""
    parts = arn.split(":")
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:aws:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return arn


def _key_policy(request, key_arn):
    """Whom a KMS key's policy lets do the request's action: "caller" (named), "account" (the
    account's root: then the caller's own policies decide), or None."""
    key_id = key_arn.split(":key/")[-1]
    try:
        key = kms_backends[request.account_id][key_arn.split(":")[3]].describe_key(key_id)
    except Exception:
        return "account"
    document = json.loads(key.policy) if isinstance(key.policy, str) else key.policy
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    caller = _identity(request._access_key.arn)
    root = f"arn:aws:iam::{caller.split(':')[4]}:root"
    verdict = None
    for statement in statements:
        rule = access_control.IAMPolicyStatement(statement)
        if statement.get("Effect") != "Allow" or not rule._check_element_matches("Action", request._action):
            continue
        named = statement.get("Principal", {})
        named = named.get("AWS", []) if isinstance(named, dict) else named
        named = [named] if isinstance(named, str) else named
        if caller in named or "*" in named:
            return "caller"
        if root in named:
            verdict = "account"
    return verdict


_check_action_permitted = access_control.IAMRequestBase.check_action_permitted


def _check_with_key_policy(self, resource):
    """KMS as AWS decides: a key's policy that names the caller allows it; one that names the
    account's root leaves it to the caller's own policies; one that names neither refuses."""
    if self._action.startswith("kms:") and ":key/" in resource:
        verdict = _key_policy(self, resource)
        if verdict == "caller":
            return
        if verdict is None:
            self._raise_access_denied()
    _check_action_permitted(self, resource)


access_control.IAMRequestBase.check_action_permitted = _check_with_key_policy
def _json_errors(response_class):
    """moto 5.2.5 answers a refused Kinesis, DynamoDB or KMS call in XML; those services speak
    JSON, and an SDK reads the error's code from it (AccessDeniedException, as AWS sends)."""
    call_action = response_class.call_action

    def call(self):
        answer = call_action(self)
        if not (isinstance(answer, tuple) and len(answer) == 3):
            return answer
        status, headers, body = answer
        text = body.decode() if isinstance(body, bytes) else body
        if status < 400 or not isinstance(text, str) or not text.lstrip().startswith("<?xml"):
            return answer
        code = re.search(r"<Code>(.*?)</Code>", text)
        message = re.search(r"<Message>(.*?)</Message>", text)
        code = code.group(1) if code else "AccessDenied"
        code = {"AccessDenied": "AccessDeniedException"}.get(code, code)
        headers = {k: v for k, v in dict(headers).items() if k.lower() != "content-type"}
        headers.update({"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})
        return status, headers, json.dumps({"__type": code, "message": message.group(1) if message else ""})

    response_class.call_action = call


@classmethod
def _key_from_template(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """AWS::KMS::Key with its KeyUsage and KeySpec (moto 5.2.5 makes every key symmetric)."""
    properties = cloudformation_json["Properties"]
    key = kms_backends[account_id][region_name].create_key(
        policy=properties["KeyPolicy"],
        key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
        key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
        description=properties.get("Description"),
        tags=properties.get("Tags", []),
    )
    key.key_rotation_status = properties.get("EnableKeyRotation", False)
    key.enabled = properties.get("Enabled", True)
    return key


Key.create_from_cloudformation_json = _key_from_template

for _service in (KinesisResponse, DynamoHandler, KmsResponse):
    _json_errors(_service)
_get_shard_iterator = KinesisBackend.get_shard_iterator


def _iterator_naming_its_stream(self, stream_arn, stream_name, *args, **kwargs):
    """A shard iterator asked for by StreamARN names its stream too (moto 5.2.5 writes None),
    so a GetRecords with it is checked against that stream."""
    if stream_name is None and stream_arn:
        stream_name = stream_arn.split("/")[-1]
    return _get_shard_iterator(self, stream_arn, stream_name, *args, **kwargs)


KinesisBackend.get_shard_iterator = _iterator_naming_its_stream
KinesisResponse._determine_resource = _kinesis_resource
DynamoHandler._determine_resource = _named_by("TableName", "dynamodb", "table")
KmsResponse._determine_resource = _named_by("KeyId", "kms", "key")

_dispatch = DomainDispatcherApplication.__call__
_one_at_a_time = threading.Lock()


def _serial(self, environ, start_response):
    with _one_at_a_time:
        return list(_dispatch(self, environ, start_response))


DomainDispatcherApplication.__call__ = _serial

if __name__ == "__main__":
    server.main()

"""Stands deploy/templates up in moto's CloudFormation and hands out credentials for their roles.

Run by scripts/local-stacks with moto's Python (boto3 is there). Against the moto that
scripts/lib/moto_iam.py starts (scripts/with-emulators: WEIR_TEST_IAM_AWS):

  up                 deploy the templates in deploy/README.md's order with the parameters the
                     README and the pipeline pass (once: later calls read the stacks), then
                     turn IAM enforcement on; prints JSON: every stack's outputs, the task
                     definition's environment, and credentials for an administrator (the test's
                     own calls), the task role (as ECS would give them) and the pipeline's publish
                     role (as CodeBuild would), which signs and assumes the operator-deploy role
  role NAME --without ACTION...
                     a copy of role NAME with ACTION taken out of its policies, trusted by the
                     account, and credentials for it; prints JSON (administrator credentials in
                     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)

One account stands for both (the templates' ToolingAccountId is the account itself). What
moto's CloudFormation cannot create (CodeBuild projects, the CodePipeline, bucket policies,
the service's scaling, the alarms) is left out of each template with whatever refers to it,
named on stderr, and checked by scripts/lint-deploy only.
"""

import argparse
import ast
import json
import os
import sys
import urllib.request
import warnings

import boto3
import yaml
from botocore.exceptions import ClientError
from moto.cloudformation.parsing import get_model_map

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "templates")
PREFIX = "weir"
REGION = "us-east-1"
ADMIN = "weir-local-admin"


def client(endpoint, service, credentials=None):
    credentials = credentials or {
        "AccessKeyId": "weir-test",
        "SecretAccessKey": "weir-test",
    }
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
    )


def enforce(endpoint, on):
    """moto's IAM enforcement: on from the next call, or off."""
    count = b"0" if on else b"inf"
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count, method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


def outputs(cloudformation, stack):
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


class _Template(yaml.SafeLoader):
    """CloudFormation's YAML: `!Ref X` is {"Ref": "X"}, `!GetAtt A.B` {"Fn::GetAtt": ["A", "B"]},
    any other `!Fn v` {"Fn::Fn": v}."""


def _function(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Template.add_multi_constructor("!", _function)


def _names(value):
    """The logical names a piece of a template refers to."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0]
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                for part in text.split("${")[1:]:
                    yield part.split("}")[0].split(".")[0]
            yield from _names(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _names(inner)


def creatable(path):
    """The template without the resources moto's CloudFormation cannot create, those that
    refer to them, and the outputs that do; and the names of what was left out."""
    with open(path) as body:
        template = yaml.load(body, Loader=_Template)
    resources = template["Resources"]
    left_out = {name for name, resource in resources.items() if resource["Type"] not in get_model_map()}
    while True:
        more = {
            name for name, resource in resources.items()
            if name not in left_out and (set(_names(resource)) | set(_listed(resource.get("DependsOn")))) & left_out
        }
        if not more:
            break
        left_out |= more
    template["Resources"] = {n: r for n, r in resources.items() if n not in left_out}
    template["Outputs"] = {
        n: o for n, o in template.get("Outputs", {}).items() if not set(_names(o)) & left_out
    }
    return template, sorted(f"{n} ({resources[n]['Type']})" for n in left_out)


def _listed(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def deploy(cloudformation, stack, template, parameters):
    """Create the stack unless it exists; its outputs."""
    try:
        return outputs(cloudformation, stack)
    except ClientError:
        pass
    body, left_out = creatable(os.path.join(TEMPLATES, template))
    if left_out:
        print(f"local-stacks: {template}: moto cannot create {', '.join(left_out)}", file=sys.stderr)
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
        reasons = [e.get("ResourceStatusReason", "") for e in events if "FAILED" in e["ResourceStatus"]]
        sys.exit(f"error: stack {stack} ({template}) ended {status}: {reasons}")
    return outputs(cloudformation, stack)


def stand_up(endpoint):
    """Every template, in deploy/README.md's order, with the documented parameters."""
    cloudformation = client(endpoint, "cloudformation")
    account = client(endpoint, "sts").get_caller_identity()["Account"]
    image_repository = f"arn:aws:ecr:{REGION}:{account}:repository/weir"
    image = f"{account}.dkr.ecr.{REGION}.amazonaws.com/weir:1"
    subnets, vpc = "subnet-0a,subnet-0b", "vpc-0c"
    alarm_topic = f"arn:aws:sns:{REGION}:{account}:{PREFIX}-alarms"
    bucket = f"{PREFIX}-artifacts-{account}-{REGION}"
    stacks = {}
    # 1. Tooling: the pipeline, its key, bucket and signing key.
    stacks["pipeline"] = deploy(cloudformation, f"{PREFIX}-pipeline", "pipeline.yaml", {
        "ConnectionArn": f"arn:aws:codeconnections:{REGION}:{account}:connection/local",
        "Repository": "you/weir",
        "WorkloadAccountId": account,
        "WorkloadArtifactsBucket": bucket,
        "ServiceImage": image,
        "ServiceImageRepositoryArn": image_repository,
        "ServiceSubnets": subnets,
        "ServiceVpcId": vpc,
        "AlarmTopicArn": alarm_topic,
    })
    pipeline = stacks["pipeline"]
    # 2. Workload: the roles the pipeline assumes.
    stacks["cross-account"] = deploy(cloudformation, f"{PREFIX}-cross-account", "cross-account.yaml", {
        "ToolingAccountId": account,
        "PipelineKeyArn": pipeline.get("PipelineKeyArn", ""),
        "PipelineBucketName": pipeline.get("PipelineBucketName", ""),
    })
    # 3. Workload: the artifact bucket and the operator-deploy role.
    stacks["artifacts"] = deploy(cloudformation, f"{PREFIX}-artifacts", "artifacts.yaml", {
        "ToolingAccountId": account,
    })
    # 4. What the pipeline's deploy stage creates, with its ParameterOverrides; the service
    #    reads its stream from the start (StartPosition, a parameter of the template) so that
    #    trades written before its task starts are read.
    stacks["streams"] = deploy(cloudformation, f"{PREFIX}-streams", "streams.yaml", {"Prefix": PREFIX})
    stacks["service"] = deploy(cloudformation, f"{PREFIX}-service", "service.yaml", {
        "Prefix": PREFIX,
        "Image": image,
        "ImageRepositoryArn": image_repository,
        "Subnets": subnets,
        "VpcId": vpc,
        "OperatorPrefix": "operators/max",
        "SigningKeyArns": pipeline.get("SigningKeyArn", ""),
        "StartPosition": "trim-horizon",
    })
    stacks["dashboard"] = deploy(cloudformation, f"{PREFIX}-dashboard", "dashboard.yaml", {"Prefix": PREFIX})
    stacks["alarms"] = deploy(cloudformation, f"{PREFIX}-alarms", "alarms.yaml", {
        "Prefix": PREFIX,
        "AlarmTopicArn": alarm_topic,
    })
    return account, stacks


def physical(cloudformation, stack, logical):
    for resource in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]:
        if resource["LogicalResourceId"] == logical:
            return resource["PhysicalResourceId"]
    sys.exit(f"error: stack {stack} has no resource {logical}")


def admin(endpoint):
    """An IAM user allowed everything: the test's own calls once enforcement is on."""
    iam = client(endpoint, "iam")
    try:
        iam.create_user(UserName=ADMIN)
    except ClientError:
        pass
    iam.put_user_policy(UserName=ADMIN, PolicyName="everything", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def assume(endpoint, role_arn, session, credentials=None):
    answer = client(endpoint, "sts", credentials).assume_role(RoleArn=role_arn, RoleSessionName=session)
    found = answer["Credentials"]
    return {k: found[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def role_arn(iam, name):
    return iam.get_role(RoleName=name)["Role"]["Arn"]


def up(endpoint):
    enforce(endpoint, on=False)
    account, stacks = stand_up(endpoint)
    cloudformation = client(endpoint, "cloudformation")
    iam = client(endpoint, "iam")
    task_role = physical(cloudformation, f"{PREFIX}-service", "TaskRole")
    task_definition = physical(cloudformation, f"{PREFIX}-service", "TaskDefinition")
    definition = client(endpoint, "ecs").describe_task_definition(taskDefinition=task_definition)
    container = definition["taskDefinition"]["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in container.get("environment", []) if e}
    publish_role = physical(cloudformation, f"{PREFIX}-pipeline", "PublishRole")
    credentials = {
        "admin": admin(endpoint),
        # As ECS gives a task its role: assumed by the service ecs-tasks.amazonaws.com, which the
        # role's trust policy names and no caller here is, so before enforcement is on.
        "task": assume(endpoint, role_arn(iam, task_role), "ecs-task"),
        # As CodeBuild gives the publish project its role (trusted: codebuild.amazonaws.com).
        "publish": assume(endpoint, role_arn(iam, publish_role), "codebuild"),
    }
    enforce(endpoint, on=True)
    print(json.dumps({
        "account": account,
        "region": REGION,
        "stacks": stacks,
        "task_role": task_role,
        "publish_role": publish_role,
        "environment": environment,
        "credentials": credentials,
    }, indent=2))


def without(endpoint, name, actions):
    """A copy of role NAME without ACTIONS, and credentials for it (as the administrator)."""
    admin_credentials = {
        "AccessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    iam = client(endpoint, "iam", admin_credentials)
    account = client(endpoint, "sts", admin_credentials).get_caller_identity()["Account"]
    copy = f"{name[:40]}-without-" + "-".join(a.replace(":", "-") for a in actions)
    copy = copy[:64]
    missing = set(actions)
    documents = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError:
                # A policy CloudFormation made comes back as Python's repr of it from moto.
                document = ast.literal_eval(document)
        # (A statement left out with AWS::NoValue comes back as a null.)
        statements = [s for s in _listed(document["Statement"]) if s]
        kept = []
        for statement in statements:
            listed = _listed(statement["Action"])
            missing -= set(listed)
            left = [a for a in listed if a not in actions]
            if left:
                kept.append(dict(statement, Action=left))
        documents.append((policy, dict(document, Statement=kept)))
    if missing:
        sys.exit(f"error: role {name} does not grant {sorted(missing)}")
    try:
        iam.create_role(RoleName=copy, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }],
        }))
    except ClientError:
        pass
    for policy, document in documents:
        iam.put_role_policy(RoleName=copy, PolicyName=policy, PolicyDocument=json.dumps(document))
    arn = role_arn(iam, copy)
    print(json.dumps({"role": arn, "credentials": assume(endpoint, arn, "least-privilege", admin_credentials)}))


def main():
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("WEIR_TEST_IAM_AWS"),
                        help="the moto of scripts/lib/moto_iam.py (default: $WEIR_TEST_IAM_AWS)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up")
    role = commands.add_parser("role")
    role.add_argument("name")
    role.add_argument("--without", nargs="+", required=True, metavar="ACTION")
    args = parser.parse_args()
    if not args.endpoint:
        sys.exit("error: no endpoint: pass --endpoint or run under scripts/with-emulators")
    if args.command == "up":
        up(args.endpoint)
    else:
        without(args.endpoint, args.name, args.without)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Creates what the functions read at start-up, on local emulators, from template.yaml.

    setup_aws.py --dynamodb URL --moto URL --prefix NAME --secrets-prefix /path/ ENV_FILE

- every AWS::DynamoDB::Table of template.yaml, on DynamoDB Local (URL), with the template's own
  keys, attribute definitions, indexes and TTL, named NAME-<LogicalId>;
- the match queue on moto (URL), as NAME-MatchQueue;
- the six secrets of infra/scripts/lambda/secrets.env as SSM SecureString parameters on moto, named
  SECRETS_PREFIX + secret name (what the functions fetch with one GetParameters at init);
- ENV_FILE: KEY=VALUE lines for the functions: each table variable of the template's Globals
  (CONTACTS_TABLE=NAME-ContactsTable, ...), MATCH_QUEUE_URL, SECRETS_PREFIX, PUBLIC_BASE_URL,
  the endpoints (AWS_ENDPOINT_URL = moto for SSM and SQS, AWS_ENDPOINT_URL_DYNAMODB = DynamoDB
  Local), dummy credentials and region. No secret: the functions fetch them from SSM.

Runs with the venv of infra/scripts/emulators.sh (boto3 from moto[server], PyYAML from cfn-lint).
"""

import argparse
import sys

import boto3
import yaml

from events import ROOT, secrets  # the same folder: one reader of secrets.env
CREDENTIALS = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


class TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short intrinsic tags (!Ref X) as {"Ref": X}-like tuples."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"!" + suffix: value}


TemplateLoader.add_multi_constructor("!", _intrinsic)


def create_table(client, name, props):
    request = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    client.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dynamodb", required=True, help="DynamoDB Local's URL")
    parser.add_argument("--moto", required=True, help="moto's URL (SQS and SSM)")
    parser.add_argument("--prefix", default="lambda-check")
    parser.add_argument("--secrets-prefix", default="/attribution-engine/lambda-check/")
    parser.add_argument("env_file")
    args = parser.parse_args()

    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=TemplateLoader)
    resources = template["Resources"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    dynamodb = boto3.client("dynamodb", endpoint_url=args.dynamodb, **CREDENTIALS)
    sqs = boto3.client("sqs", endpoint_url=args.moto, **CREDENTIALS)
    ssm = boto3.client("ssm", endpoint_url=args.moto, **CREDENTIALS)

    env = {}
    tables = 0
    for variable, value in variables.items():
        ref = value.get("!Ref") if isinstance(value, dict) else None
        resource = resources.get(ref) if ref else None
        if resource is None:
            continue
        if resource["Type"] == "AWS::DynamoDB::Table":
            name = f"{args.prefix}-{ref}"
            create_table(dynamodb, name, resource["Properties"])
            env[variable] = name
            tables += 1
        elif resource["Type"] == "AWS::SQS::Queue":
            env[variable] = sqs.create_queue(QueueName=f"{args.prefix}-{ref}")["QueueUrl"]
    declared = sum(1 for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table")
    if tables != declared:
        sys.exit(f"setup_aws: {declared} tables in template.yaml but only {tables} named in Globals")

    for key, value in secrets().items():
        ssm.put_parameter(
            Name=f"{args.secrets_prefix}{key}", Value=value, Type="SecureString", Overwrite=True
        )
    env["SECRETS_PREFIX"] = args.secrets_prefix
    # The template's MetaAdAccountId parameter: the daily pull refuses to start without one.
    env["META_AD_ACCOUNT_ID"] = "act_1234567890"
    env["PUBLIC_BASE_URL"] = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    env["AWS_ENDPOINT_URL"] = args.moto
    env["AWS_ENDPOINT_URL_DYNAMODB"] = args.dynamodb
    env["AWS_ACCESS_KEY_ID"] = "test"
    env["AWS_SECRET_ACCESS_KEY"] = "test"
    env["AWS_REGION"] = "us-east-1"
    env["AWS_EC2_METADATA_DISABLED"] = "true"

    with open(args.env_file, "w") as out:
        for key, value in env.items():
            out.write(f"{key}={value}\n")
    print(
        f"setup_aws: {tables} tables on DynamoDB Local, the match queue and "
        f"{len(secrets())} SSM parameters under {args.secrets_prefix} on moto",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

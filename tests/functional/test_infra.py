"""The deployable template: packaged by infra/package.py once per stage, then checked offline.

What CloudFormation would only reveal at deploy time (an invalid merge, a queue that never
dead-letters, a role missing an action the code calls, a zip carrying boto3) fails here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from chalice.cli.factory import CLIFactory

from chalicelib import clients, metrics
from chalicelib.settings import Settings, get_settings
from chalicelib.storage import keys
from herald_local import bootstrap
from infra import package as infra_package
from tests.conftest import TABLE, TEST_STAGE

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")
SQS_HANDLERS = {  # Chalice's logical id for each app.py SQS handler -> the settings naming its queues
    "Deliver": ("deliveries_queue", "deliveries_dlq"),
    "IngestEvents": ("ingest_queue", "ingest_dlq"),
    "FanOut": ("fan_out_queue", "fan_out_dlq"),
}
BATCH_SIZES = {"FanOut": 1}
"""One fan-out job per invocation: each job gets the function's whole time."""
SECRET_VARIABLES = {
    "HERALD_TOKEN_SECRET": "token_secret",
    "HERALD_VAPID_PRIVATE_KEY": "vapid_private_key",
    "HERALD_SLACK_CLIENT_ID": "slack_client_id",
    "HERALD_SLACK_CLIENT_SECRET": "slack_client_secret",
}
POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
# Operations whose IAM action has another name (IAM has no batch or transaction actions of its own).
IAM_ACTIONS_FOR = {
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "dynamodb:TransactWriteItems": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
}
IAM_PREFIX = {"dynamodb": "dynamodb", "sqs": "sqs", "sesv2": "ses"}


@dataclass(frozen=True)
class Packaged:
    stage: str
    out: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        found: dict[str, Any] = self.template["Resources"]
        return found

    def of_type(self, kind: str) -> dict[str, Any]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    def props(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.resources[name]["Properties"]
        return found

    def env(self, function: str) -> dict[str, str]:
        found: dict[str, str] = self.props(function)["Environment"]["Variables"]
        return found

    def settings(self, function: str) -> Settings:
        """What chalicelib.settings resolves inside the deployed `function`."""
        with pytest.MonkeyPatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("HERALD_")]:
                patch.delenv(name)
            for name, value in self.env(function).items():
                patch.setenv(name, value)
            return get_settings()

    def queue_of(self, function: str, setting: str) -> str:
        """The logical id of the queue `function` knows by its `setting` (e.g. deliveries_dlq)."""
        return self.queue_named(getattr(self.settings(function), setting))

    def queue_named(self, name: str) -> str:
        """The logical id of the AWS::SQS::Queue called `name`."""
        matches = [
            k for k, r in self.of_type("AWS::SQS::Queue").items() if r["Properties"]["QueueName"] == name
        ]
        assert len(matches) == 1, f"no single queue named {name}: {matches}"
        return matches[0]

    def statements(self) -> list[dict[str, Any]]:
        found = []
        for role in self.of_type("AWS::IAM::Role").values():
            for policy in role["Properties"].get("Policies", []):
                found += policy["PolicyDocument"]["Statement"]
        for policy in self.of_type("AWS::IAM::Policy").values():
            found += policy["Properties"]["PolicyDocument"]["Statement"]
        return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module", params=STAGES)
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packaged]:
    """`python -m infra.package` exactly as `make package` runs it, once per stage."""
    stage = request.param
    out = tmp_path_factory.mktemp(f"build-{stage}")
    done = subprocess.run(
        [sys.executable, "-m", "infra.package", "--stage", stage, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode == infra_package.EXIT_NO_WHEELS:
        pytest.skip(f"packaging needs the Lambda's wheels from PyPI, unreachable here: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    yield Packaged(stage, out, json.loads((out / "sam.json").read_text()))


def test_packaged_template_has_no_cfn_lint_errors(packaged: Packaged) -> None:
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    matches = lint_file(packaged.out / "sam.json", config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_every_sqs_event_source_reports_batch_item_failures(packaged: Packaged) -> None:
    seen = {}
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                seen[name] = event["Properties"]
    assert set(seen) == set(SQS_HANDLERS)
    for name, source in seen.items():
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        assert source["BatchSize"] == BATCH_SIZES.get(name, 10), name
        # Chalice's own Fn::Sub, overridden (same intrinsic) to reference the queue resource.
        assert set(source["Queue"]) == {"Fn::Sub"}, name
        queue = packaged.queue_of(name, SQS_HANDLERS[name][0])
        assert source["Queue"]["Fn::Sub"] == f"${{{queue}.Arn}}", name
        assert packaged.env(name)["HERALD_REPORT_BATCH_ITEM_FAILURES"] == "1"


def test_a_delivery_backlog_cannot_take_the_accounts_whole_concurrency(packaged: Packaged) -> None:
    """The deliveries queue scales its function to at most 200 instances (of the account's
    default 1,000), so a backlog of slow receivers leaves room for the API."""
    deliver = packaged.of_type("AWS::Serverless::Function")["Deliver"]
    (source,) = deliver["Properties"]["Events"].values()
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 200}


def test_each_queue_dead_letters_to_its_own_dlq(packaged: Packaged) -> None:
    for function, (queue_setting, dlq_setting) in SQS_HANDLERS.items():
        queue = packaged.queue_of(function, queue_setting)
        dlq = packaged.queue_of(function, dlq_setting)
        redrive = packaged.props(queue)["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
        assert redrive["maxReceiveCount"] == bootstrap.queue_shape(queue).max_receive_count == 12
        assert packaged.props(dlq)["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert "RedrivePolicy" not in packaged.props(dlq)


def test_visibility_timeout_is_at_least_six_function_timeouts(packaged: Packaged) -> None:
    for function, (queue_setting, _) in SQS_HANDLERS.items():
        timeout = packaged.props(function)["Timeout"]
        queue = packaged.queue_of(function, queue_setting)
        assert packaged.props(queue)["VisibilityTimeout"] >= 6 * timeout


def test_alarms_watch_each_dlq_depth_and_each_queue_age(packaged: Packaged) -> None:
    watched = set()
    for alarm in packaged.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["AlarmActions"], "an alarm nobody hears"
        if props.get("Namespace") != "AWS/SQS":
            continue
        [dimension] = props["Dimensions"]
        queue = dimension["Value"]["Fn::GetAtt"][0]
        watched.add((props["MetricName"], queue))
        if props["MetricName"] == "ApproximateNumberOfMessagesVisible":
            assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    expected = set()
    for function, (queue_setting, dlq_setting) in SQS_HANDLERS.items():
        expected.add(("ApproximateNumberOfMessagesVisible", packaged.queue_of(function, dlq_setting)))
        expected.add(("ApproximateAgeOfOldestMessage", packaged.queue_of(function, queue_setting)))
    assert watched >= expected


def _herald_metrics_of(alarm: dict[str, Any]) -> set[str]:
    props = alarm["Properties"]
    stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
    single = [props] if "MetricName" in props else []
    return {m["MetricName"] for m in stats + single if m["Namespace"] == metrics.NAMESPACE}


def test_alarms_use_the_metrics_the_code_writes(packaged: Packaged) -> None:
    """The DLQ-arrival and failure-rate alarms read Herald's EMF metrics, by the names and
    dimensions the worker and the dead-letter path write (tests/unit/test_observability.py)."""
    alarms = packaged.of_type("AWS::CloudWatch::Alarm").values()
    used = set().union(*(_herald_metrics_of(alarm) for alarm in alarms))
    assert used == {"DlqArrivals", "Deliveries"}
    [dlq] = [a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "DlqArrivals"]
    assert dlq["Dimensions"][0]["Name"] == "Queue"
    assert dlq["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == packaged.queue_of("Deliver", "deliveries_dlq")


def test_the_dashboard_charts_every_herald_metric(packaged: Packaged) -> None:
    [dashboard] = packaged.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(
        dashboard["Properties"]["DashboardBody"]["Fn::Sub"].replace("${AWS::Region}", "us-east-1")
    )
    text = json.dumps(body)
    for name in ("Deliveries", "AttemptLatency", "Retries", "DlqArrivals", "EventsPublished", "FanoutSize"):
        assert name in text, name
    assert packaged.settings("Deliver").deliveries_dlq in text  # placeholders rendered


def test_iam_has_no_wildcard_resource_or_action(packaged: Packaged) -> None:
    for statement in packaged.statements():
        assert statement["Effect"] == "Allow"
        for action in _listed(statement["Action"]):
            assert "*" not in action, statement
        for resource in _listed(statement["Resource"]):
            assert resource != "*", statement
            # Scoped to this stack's resources or, by ARN, to this account.
            assert isinstance(resource, dict), statement
            if "Fn::Sub" in resource:
                assert re.search(r"\$\{(AWS::AccountId|\w+\.Arn)\}", resource["Fn::Sub"]), statement


def test_iam_actions_exist(packaged: Packaged) -> None:
    """IAM ignores misspelt or imaginary actions (sqs:SendMessageBatch, dynamodb:TransactWriteItems)
    silently: check them against the service reference cfn-lint ships."""
    known = json.loads(resources.files("cfnlint.data.AdditionalSpecs").joinpath("Policies.json").read_text())
    for statement in packaged.statements():
        for action in _listed(statement["Action"]):
            prefix, name = action.split(":")
            assert name.lower() in known[prefix]["Actions"], action


def _aws_calls_in_chalicelib() -> set[str]:
    """IAM actions for every boto3 operation chalicelib calls (`.send_message(` and the like)."""
    import botocore.session
    from botocore import xform_name

    source = "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))
    called = set(re.findall(r"\.([a-z_]+)\(", source))
    session = botocore.session.get_session()
    actions: set[str] = set()
    for service, prefix in IAM_PREFIX.items():
        for operation in session.get_service_model(service).operation_names:
            if xform_name(operation) in called:
                action = f"{prefix}:{operation}"
                actions |= IAM_ACTIONS_FOR.get(action, {action})
    return actions


def test_the_role_grants_exactly_what_the_code_calls(packaged: Packaged) -> None:
    granted = {action for s in packaged.statements() for action in _listed(s["Action"])}
    needed = _aws_calls_in_chalicelib()
    assert {"dynamodb:Query", "sqs:SendMessage", "ses:SendEmail"} <= needed  # the scan works
    assert needed - granted == set(), "calls the role does not allow"
    assert granted - needed - POLLER_ACTIONS - LOG_ACTIONS == set(), "grants no code uses"


def test_the_role_reaches_the_indexes_the_store_queries(packaged: Packaged) -> None:
    index_arns = [
        r["Fn::Sub"]
        for s in packaged.statements()
        if "dynamodb:Query" in _listed(s["Action"])
        for r in _listed(s["Resource"])
        if "Fn::Sub" in r
    ]
    for index in (keys.BY_HID_INDEX, keys.BY_APP_INDEX):
        assert f"${{HeraldTable.Arn}}/index/{index}" in index_arns


def test_ses_is_limited_to_the_sender_identity(packaged: Packaged) -> None:
    [statement] = [s for s in packaged.statements() if "ses:SendEmail" in _listed(s["Action"])]
    sender = packaged.settings("APIHandler").email_sender
    identities = {r["Fn::Sub"].rsplit("identity/", 1)[1] for r in _listed(statement["Resource"])}
    assert identities == {sender, sender.rpartition("@")[2]}


def test_table_matches_what_bootstrap_creates_locally(packaged: Packaged) -> None:
    table = packaged.props("HeraldTable")
    definition = bootstrap.table_definition()
    assert {k: table[k] for k in definition} == definition
    assert set(definition) >= {"AttributeDefinitions", "KeySchema", "LocalSecondaryIndexes", "BillingMode"}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert packaged.resources["HeraldTable"]["DeletionPolicy"] == "Retain"


def test_resource_names_are_the_names_the_functions_use(packaged: Packaged) -> None:
    """One source of truth: every function resolves, through chalicelib.settings, the names the
    template created."""
    names = {packaged.props("HeraldTable")["TableName"]} | {
        q["Properties"]["QueueName"] for q in packaged.of_type("AWS::SQS::Queue").values()
    }
    for function in packaged.of_type("AWS::Serverless::Function"):
        settings = packaged.settings(function)
        used = {
            settings.table_name,
            settings.deliveries_queue,
            settings.deliveries_dlq,
            settings.ingest_queue,
            settings.ingest_dlq,
            settings.fan_out_queue,
            settings.fan_out_dlq,
        }
        assert used == names, function


def test_stages_never_share_a_table_or_queue() -> None:
    def names(stage: str) -> set[str]:
        values = infra_package.placeholder_values(stage, infra_package.stage_environment(stage))
        return {
            values[k]
            for k in (
                "TABLE",
                "DELIVERIES_QUEUE",
                "DELIVERIES_DLQ",
                "INGEST_QUEUE",
                "INGEST_DLQ",
                "FANOUT_QUEUE",
                "FANOUT_DLQ",
            )
        }

    assert len(names("dev")) == len(names("prod")) == 7
    assert not names("dev") & names("prod")


def test_secrets_reach_every_function_by_reference_only(packaged: Packaged) -> None:
    secret_id = infra_package.SECRET_ID.format(stage=packaged.stage)
    for function in packaged.of_type("AWS::Serverless::Function"):
        env = packaged.env(function)
        for variable, key in SECRET_VARIABLES.items():
            assert env[variable] == f"{{{{resolve:secretsmanager:{secret_id}:SecretString:{key}}}}}"
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    configured = set(config.get("environment_variables", {}))
    for stage in config["stages"].values():
        configured |= set(stage.get("environment_variables", {}))
    assert not configured & set(SECRET_VARIABLES), "secrets belong in Secrets Manager, not config.json"


def test_lambda_zip_is_small_and_carries_no_dev_or_runtime_packages(packaged: Packaged) -> None:
    path = packaged.out / "deployment.zip"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    tops = {name.split("/", 1)[0] for name in names}
    portal = {f"chalicelib/portal/{name}" for name in ("index.html", "main.js", "portal.css")}
    assert portal <= names, "the portal's page and assets ship in the Lambda package"
    distributions = {re.split(r"[-.]", top, maxsplit=1)[0].lower() for top in tops}
    assert not distributions & {"boto3", "botocore", "s3transfer", "moto", "pytest", "_pytest"}
    assert not tops & {"herald_local", "tests", "infra", "bench"}
    assert {"app.py", "chalicelib", "pydantic", "cryptography"} <= tops
    assert path.stat().st_size < 20 * 1024 * 1024


def test_the_tests_run_as_a_stage_that_imposes_no_deployed_names() -> None:
    """chalice.test's Client applies its stage's variables over the environment the tests
    set: they run as a stage no config defines, so dev's and prod's tables, queues, senders
    and limits never reach them."""
    assert TEST_STAGE not in infra_package.stages()
    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=TEST_STAGE)
    assert set(config.environment_variables) == {"HERALD_REPORT_BATCH_ITEM_FAILURES"}


def test_every_deployed_stage_names_its_table_queues_sender_and_limits() -> None:
    wanted = {
        "HERALD_TABLE",
        "HERALD_DELIVERIES_QUEUE",
        "HERALD_DELIVERIES_DLQ",
        "HERALD_INGEST_QUEUE",
        "HERALD_INGEST_DLQ",
        "HERALD_FANOUT_QUEUE",
        "HERALD_FANOUT_DLQ",
        "HERALD_EMAIL_SENDER",
        "HERALD_VAPID_SUBJECT",
        "HERALD_RATE_LIMIT_PER_MINUTE",
        "HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE",
        "HERALD_LOG_LEVEL",
    }
    for stage in STAGES:
        assert wanted <= set(infra_package.stage_environment(stage)), stage


def test_moto_table_from_bootstrap_matches_the_template(moto_aws: None) -> None:
    described = clients.client("dynamodb").describe_table(TableName=TABLE)["Table"]
    template = json.loads(bootstrap.INFRA_TEMPLATE.read_text())["Resources"]["HeraldTable"]["Properties"]

    def by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))

    assert described["KeySchema"] == template["KeySchema"]
    assert by_name(described["AttributeDefinitions"]) == by_name(template["AttributeDefinitions"])
    indexes = [
        {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
        for index in described["LocalSecondaryIndexes"]
    ]
    assert indexes == template["LocalSecondaryIndexes"]


def test_local_queues_from_bootstrap_match_the_template(moto_aws: None) -> None:
    sqs = clients.client("sqs")
    template = json.loads(bootstrap.INFRA_TEMPLATE.read_text())["Resources"]
    for logical_id in ("DeliveriesQueue", "IngestQueue", "FanOutQueue"):
        url = bootstrap.ensure_queue(sqs, f"q-{logical_id}", f"q-{logical_id}-dlq", logical_id)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        props = template[logical_id]["Properties"]
        assert int(attributes["VisibilityTimeout"]) == props["VisibilityTimeout"]
        assert int(attributes["MessageRetentionPeriod"]) == props["MessageRetentionPeriod"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":q-{logical_id}-dlq")
        assert int(redrive["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]
        dlq_url = sqs.get_queue_url(QueueName=f"q-{logical_id}-dlq")["QueueUrl"]
        dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["MessageRetentionPeriod"])
        dlq_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert (
            int(dlq["Attributes"]["MessageRetentionPeriod"])
            == template[dlq_id]["Properties"]["MessageRetentionPeriod"]
        )


def test_render_refuses_an_unknown_placeholder() -> None:
    assert infra_package.render({"a": ["@X@-q"]}, {"X": "herald"}) == {"a": ["herald-q"]}
    with pytest.raises(infra_package.PackagingError, match="@Y@"):
        infra_package.render({"a": "@Y@"}, {"X": "herald"})


def test_packaging_ignores_herald_variables_from_the_shell() -> None:
    env = infra_package.build_environment(
        {"HERALD_TABLE": "herald-prod"}, {"HERALD_INGEST_QUEUE": "x", "PATH": "/b"}
    )
    assert env == {"HERALD_TABLE": "herald-prod", "PATH": "/b"}


def test_zip_check_refuses_boto3(tmp_path: Path) -> None:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("app.py", "chalicelib/__init__.py", "boto3/__init__.py"):
            archive.writestr(name, "")
    with pytest.raises(infra_package.PackagingError, match="boto3"):
        infra_package.check_zip(path)


def test_api_gateway_answers_a_path_no_route_serves_with_a_json_404(packaged: Packaged) -> None:
    """API Gateway's own answer for an unmatched path is 403 'Missing Authentication Token',
    which echoes a non-SigV4 Authorization header; the stage replaces it with Herald's 404."""
    api = packaged.template["Resources"]["RestAPI"]["Properties"]
    missing = api["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == 404
    body = json.loads(missing["ResponseTemplates"]["application/json"])
    assert body["errors"][0]["status"] == 404
    assert "$" not in missing["ResponseTemplates"]["application/json"], "no request value is echoed"

"""Package one stage for CloudFormation: `python -m infra.package --stage dev --out build/dev`.

Chalice reads the SQS queue names from the environment while it packages (app.py's
decorators), and the merge template needs the same table and queue names. Both come from
one place: the stage's environment in .chalice/config.json, resolved through
chalicelib.settings exactly as the deployed code resolves it (so a stage that sets nothing
gets the code's defaults). This script renders infra/resources.json with those names, runs
`chalice package --merge-template` with that environment and checks the Lambda zip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "resources.json"
CONFIG = ROOT / ".chalice" / "config.json"
SECRET_ID = "herald/{stage}"  # noqa: S105 (a name, not a secret)
"""The Secrets Manager secret the stage's functions read their secrets from (see infra/README.md)."""
FORBIDDEN_IN_ZIP = frozenset(
    {
        "boto3",
        "botocore",
        "s3transfer",
        "moto",
        "pytest",
        "_pytest",
        "herald_local",
        "tests",
        "infra",
        "bench",
    }
)
"""Top-level names that mean test or local-only code (or the runtime's own boto3) leaked in."""
MAX_ZIP_BYTES = 20 * 1024 * 1024
"""Far under Lambda's 50 MB upload limit: a zip near this has picked up something it should not."""
EXIT_NO_WHEELS = 3
"""Exit status when Chalice could not fetch the Lambda's wheels (no route to PyPI, usually)."""
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z_]*)@")
_NO_INDEX = "Could not satisfy the requirement"
"""Chalice's error when pip cannot download a requirement at all: PyPI unreachable (or a typo,
which `make install` reports first)."""
_NO_WHEEL = "Could not install dependencies"
"""Chalice's warning for packages without a Lambda-compatible wheel: it still writes a zip, without them."""


class PackagingError(RuntimeError):
    """Packaging failed or produced something that must not be deployed; the message says why."""


class WheelsUnavailable(PackagingError):
    """Chalice could not download the Lambda's wheels; the zip would lack dependencies."""


@dataclass(frozen=True)
class Package:
    template: Path
    zip_path: Path
    zip_bytes: int
    names: dict[str, str]


def stages() -> list[str]:
    stages: dict[str, Any] = json.loads(CONFIG.read_text()).get("stages", {})
    return sorted(stages)


def stage_environment(stage: str) -> dict[str, str]:
    """The variables Chalice gives the stage's functions (top level merged with the stage)."""
    if stage not in stages():
        raise PackagingError(f"stage {stage!r} is not in {CONFIG.relative_to(ROOT)}: {', '.join(stages())}")
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)
    return dict(config.environment_variables)


def build_environment(stage_env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """`base` without any HERALD_* variable (a developer's shell must not rename deployed
    resources) plus the stage's own variables."""
    env = {k: v for k, v in base.items() if not k.startswith("HERALD_")}
    env.update(stage_env)
    return env


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def placeholder_values(stage: str, stage_env: Mapping[str, str]) -> dict[str, str]:
    """What the template's @NAME@ placeholders stand for, read through get_settings()."""
    from chalicelib.settings import ConfigurationError, get_settings

    with _environ(build_environment(stage_env, os.environ)):
        try:
            settings = get_settings()
        except ConfigurationError as exc:  # caught here rather than by every deployed request
            raise PackagingError(f"stage {stage}: {exc}") from exc
    sender = parseaddr(settings.email_sender)[1]
    if "@" not in sender:
        raise PackagingError(f"HERALD_EMAIL_SENDER {settings.email_sender!r} has no address")
    return {
        "STAGE": stage,
        "TABLE": settings.table_name,
        "DELIVERIES_QUEUE": settings.deliveries_queue,
        "DELIVERIES_DLQ": settings.deliveries_dlq,
        "INGEST_QUEUE": settings.ingest_queue,
        "INGEST_DLQ": settings.ingest_dlq,
        "FANOUT_QUEUE": settings.fan_out_queue,
        "FANOUT_DLQ": settings.fan_out_dlq,
        "EMAIL_SENDER": sender,
        "EMAIL_DOMAIN": sender.rpartition("@")[2],
        "SECRET_ID": SECRET_ID.format(stage=stage),
    }


def render(node: Any, values: Mapping[str, str]) -> Any:
    """`node` with every @NAME@ in its strings replaced; an unknown NAME is an error."""
    if isinstance(node, dict):
        return {key: render(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [render(value, values) for value in node]
    if isinstance(node, str):

        def lookup(match: re.Match[str]) -> str:
            if match[1] not in values:
                raise PackagingError(f"unknown placeholder {match[0]} in {TEMPLATE.relative_to(ROOT)}")
            return values[match[1]]

        return _PLACEHOLDER.sub(lookup, node)
    return node


def check_zip(path: Path) -> int:
    """The zip's size, after checking it holds no test, local-only or runtime-provided code."""
    with zipfile.ZipFile(path) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
    leaked = sorted(top for top in tops if top.split(".", 1)[0].split("-", 1)[0] in FORBIDDEN_IN_ZIP)
    if leaked:
        raise PackagingError(f"{path} contains {', '.join(leaked)}: keep them out of requirements.txt")
    if not {"app.py", "chalicelib"} <= tops:
        raise PackagingError(f"{path} lacks app.py or chalicelib")
    size = path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise PackagingError(f"{path} is {size / 1e6:.1f} MB, over {MAX_ZIP_BYTES / 1e6:.0f} MB")
    return size


def package(stage: str, out: Path, region: str | None = None) -> Package:
    """Render the merge template and run `chalice package` for `stage` into `out`."""
    stage_env = stage_environment(stage)
    values = placeholder_values(stage, stage_env)
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(render(json.loads(TEMPLATE.read_text()), values), indent=2) + "\n")
    env = build_environment(stage_env, os.environ)
    # Chalice insists on a region; the template itself uses ${AWS::Region} throughout.
    env["AWS_DEFAULT_REGION"] = (
        region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "package", "--stage", stage, "--merge-template", str(merge), str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if _NO_INDEX in output:
        raise WheelsUnavailable(f"chalice could not download the Lambda's wheels:\n{output.strip()[-2000:]}")
    if _NO_WHEEL in output:
        raise PackagingError(f"the zip would lack dependencies:\n{output.strip()}")
    if done.returncode != 0:
        raise PackagingError(f"chalice package failed ({done.returncode}):\n{output.strip()}")
    zip_path = out / "deployment.zip"
    return Package(out / "sam.json", zip_path, check_zip(zip_path), values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help=f"one of {', '.join(stages())}")
    parser.add_argument("--out", type=Path, help="output folder (default build/STAGE)")
    parser.add_argument("--region", help="only to satisfy chalice; the template is region-neutral")
    args = parser.parse_args(argv)
    try:
        result = package(args.stage, args.out or ROOT / "build" / args.stage, args.region)
    except WheelsUnavailable as exc:
        print(exc, file=sys.stderr)
        return EXIT_NO_WHEELS
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"template: {result.template}")
    print(f"zip: {result.zip_path} ({result.zip_bytes / 1e6:.1f} MB)")
    for name, value in result.names.items():
        print(f"{name.lower()}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's "Try it" commands, run as written against a local stack (only `.herald/`
becomes the stack's own data directory)."""

from __future__ import annotations

import json
import re
import subprocess

from tests.e2e.conftest import ROOT, Stack, clean_env
from tests.functional.test_readme import section


def try_it_block() -> str:
    text = section("Two commands")
    text = text[text.index("### Try it") :]
    start = text.index("```sh\n") + len("```sh\n")
    return text[start : text.index("```", start)]


def test_the_try_it_commands_work_as_written(local_stack: Stack) -> None:
    block = try_it_block()
    assert ". .herald/local.env" in block
    script = block.replace(". .herald/local.env", f". '{local_stack.env_file}'")
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env={**clean_env(), "PATH": "/usr/local/bin:/usr/bin:/bin"},  # `herald` comes from local.env
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout  # curl prints JSON answers without a newline: they follow each other
    assert '"errors"' not in out, out
    assert re.search(r"[}\n]204\n", out), out  # the delete
    assert out.startswith('{"data":[{"id":'), out  # the list, right after the create
    assert '"name":"Example new name"' not in out  # read before the update
    assert '"matched":1' in out  # the event reached the one handler
    assert '{"openapi":"3.1.0"' in out
    other = json.loads(out.strip().splitlines()[-1])  # the other account sees none of ours
    assert other["data"] == []

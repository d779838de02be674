"""The Lambda zip: `chalice package` for the prod stage into a temporary folder, measured.

infra/package.py refuses a zip that carries boto3, moto, test or local-only code, or that
is over its size limit; this part reports the size and what the zip's largest packages are.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

STAGE = "prod"
LARGEST = 3


def run() -> dict[str, Any]:
    from infra import package

    with tempfile.TemporaryDirectory(prefix="herald-bench-package-") as folder:
        try:
            built = package.package(STAGE, Path(folder))
        except package.WheelsUnavailable as exc:
            return {"rows": [{"measure": "Lambda zip", "value": f"not built: {exc}".splitlines()[0]}]}
        with zipfile.ZipFile(built.zip_path) as archive:
            by_top: Counter[str] = Counter()
            for info in archive.infolist():
                by_top[info.filename.split("/", 1)[0]] += info.compress_size
    rows = [{"measure": f"Lambda zip ({STAGE}), MB", "value": round(built.zip_bytes / 1e6, 1)}]
    rows += [
        {"measure": f"  of which {name}, MB", "value": round(size / 1e6, 1)}
        for name, size in by_top.most_common(LARGEST)
    ]
    return {"rows": rows, "zip_bytes": built.zip_bytes}

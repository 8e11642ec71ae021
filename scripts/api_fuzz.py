"""Start Roost with its HTTP API on a free port and run schemathesis against the served
OpenAPI document: every generated request must get an answer that is not a server error.

    make api-fuzz                      # or: python scripts/api_fuzz.py --schemathesis PATH
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import start_broker  # noqa: E402

from roost.config import ApiConfig, RegistryConfig  # noqa: E402

KEY = "api-fuzz-operator-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schemathesis", default="schemathesis", help="the schemathesis command")
    parser.add_argument("--max-examples", type=int, default=50)
    args = parser.parse_args()
    handle = start_broker(
        api=ApiConfig(port=0, admin_key=KEY),
        registry=RegistryConfig(enabled=True, scrypt_n=1024),
        data_dir=tempfile.mkdtemp(prefix="roost-api-fuzz-"),
    )
    try:
        base = f"http://127.0.0.1:{handle.server.ports['api']}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/v1/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        argv = [
            args.schemathesis, "run", f"{base}/api/openapi.json",
            "-H", f"Authorization: Bearer {KEY}",
            "--checks", "not_a_server_error,status_code_conformance",
            "--max-examples", str(args.max_examples),
        ]  # fmt: skip
        return subprocess.call(argv)
    finally:
        handle.stop()


if __name__ == "__main__":
    sys.exit(main())

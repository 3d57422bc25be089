"""The edge runtime's own JavaScript tests (node --test), so `make test` runs them too."""

import re
import subprocess
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[3] / "kit" / "targets" / "edge" / "runtime"


def test_javascript_runtime_tests_pass():
    done = subprocess.run(["node", "--test", "test/"], cwd=RUNTIME, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"^# pass (\d+)$", done.stdout, re.M).group(1))
    assert passed >= 50 and re.search(r"^# fail 0$", done.stdout, re.M)

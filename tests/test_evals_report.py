"""The report module's documented usage rewrites report.md and the plots from a results.json, old ones included.

    .venv/bin/pytest tests/test_evals_report.py
"""

import shutil
import subprocess
import sys
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / "evals" / "reports"


def test_report_module_rewrites_a_report_from_results_json(tmp_path):
    shutil.copy(REPORTS / "full-2f8751fa" / "results.json", tmp_path / "results.json")  # written before prompt_tuned
    done = subprocess.run([sys.executable, "-m", "hyperlora.evals.report", str(tmp_path / "results.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("#") and "## Headline" in report and "Reproduce: `hyperlora eval --out DIR" in report
    assert "| `adapter` | 12.5 " in report  # the shipped checkpoint's pass rate, read from that results.json
    assert (tmp_path / "pass_rate_by_condition.png").stat().st_size > 1000

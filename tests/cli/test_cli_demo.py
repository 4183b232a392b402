"""``graphequi demo --quick`` in-process: report, plots and its own checks."""
from __future__ import annotations

import json

from graphequi.cli.main import main


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for section in ("## 1. Symbolic", "## 2. Exact oracles", "## 3. BREC protocol", "## Checks"):
        assert section in report
    for png in ("expressivity.png", "brec_gin.png", "brec_polygin.png"):
        assert (out / png).stat().st_size > 1000, png
        assert png in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checks"] and all(c["ok"] for c in summary["checks"])
    assert "[ok]" in capsys.readouterr().out
    # the symbolic table in the JSON agrees with the paper's figures up to degree 4
    rows = json.loads((out / "expressivity.json").read_text())["rows"]
    assert all(r["computable"] == r["total"] for r in rows if r["bank"] == "ppgn")

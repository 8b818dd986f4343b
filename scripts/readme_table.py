"""The README's headline table, printed from an eval report's results.json (so no figure there is typed in).

    .venv/bin/python scripts/readme_table.py [evals/reports/full-HASH/results.json]

Without a path it reads the shipped checkpoint's full report, ``evals/reports/full-<first 8 hex of its hash>/``.
"""

import json
import sys

from hyperlora.evals import report

from hyperlora.checkpoint import WEIGHTS_FILE
from hyperlora.generator import file_hash, shipped_checkpoint


def pct(x: dict) -> str:
    return report.pct(x["value"], 1)


def pct_ci(x: dict) -> str:
    return f"{pct(x)} [{100 * x['ci_low']:.1f}, {100 * x['ci_high']:.1f}]"


def main(path: str) -> None:
    r = json.load(open(path))
    n = r["pass_rate"]["base"]["all"]["n"]
    header = ["condition", f"all (n={n})", "test_paraphrase", "test_combination", "test_family", "QA % (retention)",
              "harmful refused %", "benign refused %", "degenerate %", "context tokens"]
    rows = []
    for c in r["conditions"]:
        rate, cap = r["pass_rate"][c], r["capability"][c]
        split = rate["by_split"]
        label = f"`{c}`" + (f" (n={rate['all']['n']})" if rate["all"]["n"] != n else "")
        rows.append([label, pct_ci(rate["all"]), pct(split["test_paraphrase"]), pct(split["test_combination"]),
                     pct(split["test_family"]), f"{pct(cap['qa_accuracy'])} ({cap['qa_retention']['value']:.2f})",
                     pct(r["refusal_harmful"][c]), pct(r["refusal_benign"][c]),
                     pct(r["degenerate"][c]) if "degenerate" in r else "n/a",  # older reports lack it
                     f"{r['context_tokens'][c]:.0f}"])
    ceiling = r.get("target_ceiling")  # reports written before the ceiling was measured lack it
    if ceiling:
        split = ceiling["by_split"]
        rows.append(["ceiling: the cases' own targets, cut at the decode budget", pct_ci(ceiling["all"]),
                     pct(split["test_paraphrase"]), pct(split["test_combination"]), pct(split["test_family"])]
                    + [""] * 5)
    print(report.table(header, rows))
    d = r["adapter_minus_system_prompt"]["all"]
    print(f"\nadapter − system_prompt: {pct_ci(d)} points")


if __name__ == "__main__":
    shipped = f"evals/reports/full-{file_hash(shipped_checkpoint() / WEIGHTS_FILE)[:8]}/results.json"
    main(sys.argv[1] if len(sys.argv) > 1 else shipped)

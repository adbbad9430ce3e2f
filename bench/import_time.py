"""What `import sr_models` costs next to `import timm` (and what importing transformers after it adds).

Each round starts one fresh interpreter per statement, in turn (interleaved, so load on the machine hits all alike),
and reports the median wall time of the import inside the process.
Usage: python bench/import_time.py [--rounds N] [--output FILE]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

STATEMENTS = {
    "import timm": "import timm",
    "import sr_models": "import sr_models",
    "import sr_models, transformers (Auto classes registered)": "import sr_models, transformers.models.auto",
}
TIMED = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    seconds = {label: [] for label in STATEMENTS}
    for _ in range(args.rounds):
        for label, statement in STATEMENTS.items():
            out = subprocess.run([sys.executable, "-c", TIMED.format(statement)], capture_output=True, text=True,
                                 check=True)
            seconds[label].append(float(out.stdout.split()[-1]))
    base = statistics.median(seconds["import timm"])
    lines = [f"{args.rounds} interleaved rounds, fresh interpreter each (median)", "",
             "| statement | seconds | x import timm |", "|---|---|---|"]
    for label, values in seconds.items():
        median = statistics.median(values)
        lines.append(f"| `{label}` | {median:.2f} | {median / base:.2f} |")
    print("\n".join(lines))
    if args.output:
        args.output.write_text("# bench/import_time.py\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""What `import sr_models` costs next to `import timm` (and what importing transformers after it adds).

Each round starts one fresh interpreter per statement, in turn (interleaved, so load on the machine hits all alike),
and reports the medians of the import's wall time and of its CPU time (user + system: steadier on a busy machine).
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
TIMED = ("import time; w, c = time.perf_counter(), time.process_time(); {}; "
         "print(time.perf_counter() - w, time.process_time() - c)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    wall = {label: [] for label in STATEMENTS}
    cpu = {label: [] for label in STATEMENTS}
    for _ in range(args.rounds):
        for label, statement in STATEMENTS.items():
            out = subprocess.run([sys.executable, "-c", TIMED.format(statement)], capture_output=True, text=True,
                                 check=True)
            w, c = map(float, out.stdout.split()[-2:])
            wall[label].append(w)
            cpu[label].append(c)
    base_wall, base_cpu = statistics.median(wall["import timm"]), statistics.median(cpu["import timm"])
    lines = [f"{args.rounds} interleaved rounds, fresh interpreter each (medians)", "",
             "| statement | wall (s) | x import timm | CPU (s) | x import timm |", "|---|---|---|---|---|"]
    for label in STATEMENTS:
        w, c = statistics.median(wall[label]), statistics.median(cpu[label])
        lines.append(f"| `{label}` | {w:.2f} | {w / base_wall:.2f} | {c:.2f} | {c / base_cpu:.2f} |")
    print("\n".join(lines))
    if args.output:
        args.output.write_text("# bench/import_time.py\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

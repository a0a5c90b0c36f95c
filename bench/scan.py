"""Benchmark: a full syncprep scan beside the classic shell pipeline, on the same LDIF files.

    python bench/scan.py                          # 100,000 and 1,000,000 objects
    python bench/scan.py --sizes 20000 --runs 1   # a quick look

For each size the directory is generated once (bench/generate.py, seed 42) and kept in --data-dir.
Each measurement runs in its own process: wall time and that process's peak resident memory.
The pipeline only finds exact duplicate SMTP proxy addresses; syncprep runs every m365 rule.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPELINE = "grep -i '^proxyAddresses: smtp:' {f} | cut -d: -f3- | tr A-Z a-z | LC_ALL=C sort | LC_ALL=C uniq -d"


def measure(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB (of the process tree's largest process) and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{shlex.join(argv)} failed with exit code {code}: {err.strip()}")
    return wall, usage.ru_maxrss / 1024, code


def ensure_data(n: int, data_dir: Path) -> Path:
    path = data_dir / f"bench-{n}.ldif"
    if not path.exists():
        print(f"generating {n:,} objects -> {path} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(path), "--seed", "42"], check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated object counts")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp"), help="where generated files live")
    parser.add_argument("--runs", type=int, default=2, help="runs per measurement; the best is reported")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        path = ensure_data(n, args.data_dir)
        out = args.data_dir / f"bench-{n}.findings.jsonl"
        pipeline = ["bash", "-o", "pipefail", "-c", PIPELINE.format(f=shlex.quote(str(path)))]
        pipe = [measure(pipeline) for _ in range(args.runs)]
        scan_cmd = [sys.executable, "-m", "syncprep", "scan", str(path), "--format", "jsonl", "-o", str(out)]
        scans = [measure([*scan_cmd, "--no-progress"]) for _ in range(args.runs)]
        pipe_s = min(p[0] for p in pipe)
        scan_s, scan_rss = min((s[0], s[1]) for s in scans)
        findings = 0
        errors: dict[str, int] = {}
        with open(out, encoding="utf-8") as f:
            for line in f:
                findings += 1
                for e in json.loads(line)["errors"]:
                    errors[e] = errors.get(e, 0) + 1
        rows.append((n, path.stat().st_size / 1e6, pipe_s, scan_s, scan_rss, findings, len(errors)))

    print()
    print(
        f"{'objects':>10} {'file MB':>8} {'pipeline s':>11} {'syncprep s':>11} {'ratio':>6} "
        f"{'objects/s':>10} {'peak RSS MB':>12} {'findings':>9} {'error types':>12}"
    )
    for n, mb, pipe_s, scan_s, rss, findings, types in rows:
        print(
            f"{n:>10,} {mb:>8,.0f} {pipe_s:>11.2f} {scan_s:>11.2f} {scan_s / pipe_s:>6.2f} "
            f"{n / scan_s:>10,.0f} {rss:>12,.0f} {findings:>9,} {types:>12}"
        )
    print("\npipeline: " + PIPELINE.format(f="FILE"))
    print("targets (1,000,000 objects): syncprep <= 2x the pipeline's time, peak RSS <= 1,500 MB")


if __name__ == "__main__":
    main()

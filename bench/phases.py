"""Benchmark: where a file scan's time goes, phase by phase, on one LDIF file.

    python bench/phases.py /tmp/bench-1000000.ldif
    python bench/phases.py /tmp/bench-100000.ldif --batches 4

Three passes over the same file, each in this process, with wall time and CPU seconds (user +
system, all threads) of each:

    read      the LDIF source alone: every batch prepared and dropped, no rule runs
    rules     the per-batch work (scope, value rules, object rules, duplicate keys) on the first
              --batches batches, already read and held in memory, scaled to the whole file
    scan      the whole scan as `syncprep scan` runs it (reading overlaps the rules), then the
              findings: duplicates resolved across the scan and fixes suggested

On two cores the scan's wall time is at least (read CPU + rules CPU + findings) / 2; the figures say
which part to make cheaper. Findings are not written, so output formatting is not counted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from syncprep import engine  # noqa: E402
from syncprep.rules.catalog import select_rules  # noqa: E402
from syncprep.sources.ldif import LdifSource  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Phase:
    """Wall and CPU seconds of a with-block."""

    def __enter__(self) -> Phase:
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ldif", type=Path, help="an LDIF file (bench/generate.py writes them)")
    parser.add_argument("--batches", type=int, default=8, help="batches the rules pass runs on (default 8)")
    args = parser.parse_args()

    options = engine.ScanOptions()
    ctx = options.context()
    rules = select_rules(ctx, options.select, options.ignore)
    attributes = engine.needed_attributes(rules)
    source = LdifSource(args.ldif)

    with Phase() as read:
        batches = 0
        objects = 0
        for parts in source.part_batches(attributes):
            batches += 1
            objects += parts["dn"].height if "dn" in parts else 0

    held = []
    for parts in source.part_batches(attributes):
        held.append(parts)
        if len(held) == args.batches:
            break
    sample = sum(p["dn"].height for p in held if "dn" in p)
    engine._process(held[0], engine._State(), rules, ctx, options)  # compiles the patterns once
    with Phase() as rules_pass:
        state = engine._State()
        for parts in held:
            engine._process(parts, state, rules, ctx, options)
    state.index.close()
    scale = objects / max(1, sample)

    # The findings are made once every batch is in; the scan does not time them apart, so the
    # bench wraps the step that makes them.
    tail = Phase()
    make_findings = engine._findings

    def timed_findings(*a: object, **k: object) -> object:
        with tail:
            return make_findings(*a, **k)  # type: ignore[arg-type]

    engine._findings = timed_findings  # type: ignore[assignment]
    with Phase() as whole:
        result = engine.scan([source], options)
    engine._findings = make_findings
    print(f"{args.ldif}: {objects:,} objects in {batches} batches; {len(result.findings):,} findings\n")
    print(f"{'phase':<34} {'wall s':>8} {'CPU s':>8}")
    print(f"{'read (LDIF source alone)':<34} {read.wall:>8.2f} {read.cpu:>8.2f}")
    label = f"rules ({len(held)} batches x {scale:.1f})"
    print(f"{label:<34} {rules_pass.wall * scale:>8.2f} {rules_pass.cpu * scale:>8.2f}")
    print(f"{'scan (read + rules + findings)':<34} {whole.wall:>8.2f} {whole.cpu:>8.2f}")
    print(f"{'  of which findings, after reading':<34} {tail.wall:>8.2f} {tail.cpu:>8.2f}")
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

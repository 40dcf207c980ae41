"""Command line: ``cxlab demo | validate | run``.

Exit codes: 0 success, 1 a run finished but a notebook failed (or the machine stopped a run that
had started: full disk), 2 a user error (bad spec, bad data, bad parameters, an output folder that
cannot be written: the message says what to fix; no traceback), 3 the output folder stayed
locked by another run, 130 / 143 the run was stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cxlab.errors import CxlabError

EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR = 0, 1, 2


def _cmd_demo(args) -> int:
    from cxlab.data.synth import write_demo

    spec = write_demo(args.out, n_customers=args.customers, seed=args.seed, fmt=args.format)
    print(f"Demo study with {args.customers:,} customers (seed {args.seed}) written to {spec}")
    return EXIT_OK


def _cmd_validate(args) -> int:
    from cxlab.study import load_study
    from cxlab.data.validate import validate_study

    study = load_study(args.study)
    report = validate_study(study, collect=False)
    print(report.to_text())
    return EXIT_OK if report.ok else EXIT_USER_ERROR


def _cmd_run(args) -> int:
    from cxlab.report.runner import run_from_cli

    return run_from_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="write the demo study (data, spec, truth.json)")
    p.add_argument("--customers", type=int, default=20_000, help="number of customers (default 20000)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.add_argument("--out", type=Path, default=Path("data/demo"), help="output folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("validate", help="check a study's data against the data contract")
    p.add_argument("study", type=Path, help="study spec (YAML)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run the notebooks and write HTML reports")
    p.add_argument("config", nargs="?", type=Path, help="run config (YAML), e.g. runs/monthly.yaml")
    p.add_argument("--study", type=Path, help="study spec (YAML); overrides the config's study")
    p.add_argument("--out", type=Path, help="folder for run outputs (default: reports)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter (repeatable): name=value or notebook:name=value")
    p.add_argument("--jobs", type=int, default=None, help="notebooks run at once (default: cores)")
    p.add_argument("--timeout", type=int, default=None, help="per-notebook timeout in seconds")
    p.add_argument("--notebooks", type=Path, default=None, help="notebook folder (default notebooks/)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show each notebook's progress cell by cell (default: only when stderr is a terminal)")
    p.add_argument("--lock-timeout", type=float, default=3600,
                   help="seconds to wait for another run on the same --out (default 3600); then exit 3")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CxlabError as exc:
        if not getattr(exc, "logged", False):   # e.g. an interrupted run already said why
            print(f"cxlab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cxlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

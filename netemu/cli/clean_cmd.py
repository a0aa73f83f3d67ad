"""``netemu clean``: remove what killed runs left behind (docs/isolation.md).

Every run records the processes, network namespaces, veths, containers and networks it creates
in its state file (``OUT/run/state.json``, registered per machine; netemu.runtime.state).
``netemu clean`` removes exactly what those files list, newest first, and nothing else. A run
whose launcher is still alive is left alone unless ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NetemuError


def register(sub) -> None:
    p = sub.add_parser(
        "clean",
        help="remove the namespaces, containers and processes a killed run left behind",
        description="Remove what the state files of runs list (processes, checked by PID and "
        "start time; network namespaces and veths; containers and networks) and nothing else. "
        "Without --run-dir or --run-id: every registered run whose launcher is gone.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--run-dir", metavar="OUT", help="the run's --out directory (or OUT/run, or a state file)"
    )
    which.add_argument("--run-id", metavar="ID", help="a registered run's id")
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; remove nothing"
    )
    p.add_argument(
        "--force", action="store_true", help="also clean a run whose launcher is still running"
    )
    p.set_defaults(func=cmd_clean)


def _state_paths(args: argparse.Namespace) -> list[Path]:
    from ..runtime.state import STATE_FILE, find_registered, registry_dir

    if args.run_dir:
        path = Path(args.run_dir)
        for candidate in (path / "run" / STATE_FILE, path / STATE_FILE, path):
            if candidate.is_file():
                return [candidate]
        raise NetemuError(f"no run state file in {path} (looked for {path / 'run' / STATE_FILE})")
    if args.run_id:
        entry = registry_dir() / f"{args.run_id}.json"
        if not entry.is_file():
            raise NetemuError(f"run {args.run_id} is not registered in {registry_dir()}")
        return [entry]
    return find_registered()


def cmd_clean(args: argparse.Namespace) -> int:
    from ..runtime.state import RunState

    paths = _state_paths(args)
    failed = 0
    cleaned = 0
    for path in paths:
        state = RunState.load(path)
        resources = state.resources
        where = state.data.get("out") or path
        if state.is_live() and not args.force:
            pid = state.data["launcher"]["pid"]
            print(f"run {state.run_id} ({where}): going on (launcher pid {pid}); left alone "
                  "(--force to clean it anyway)")  # fmt: skip
            continue
        if not resources:
            if not args.dry_run:
                state.finish("cleaned")
            if args.run_dir or args.run_id:
                print(f"run {state.run_id} ({where}): nothing left to remove")
            continue
        verb = "would clean" if args.dry_run else "cleaning"
        print(f"run {state.run_id} ({where}): {verb} {len(resources)} resources")

        def report(res, what):
            print(f"  {res.kind:<9} {res.name}: {what}")

        done = state.remove_all(dry_run=args.dry_run, report=report)
        failed += sum(1 for _, what in done if what.startswith(("failed", "left alone")))
        if not args.dry_run:
            state.finish("cleaned")
            cleaned += 1
    if not paths:
        print("nothing to clean: no registered runs")
    if failed:
        raise NetemuError(f"{failed} resources could not be removed (see above)")
    return 0

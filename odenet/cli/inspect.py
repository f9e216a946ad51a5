"""``odenet inspect FILE``: the tree of an odenet HDF5 file, every dataset read back against its
checksum, and the temporary files of interrupted writes beside it (the work is
:func:`analysis.io.inspect.check` and :func:`analysis.io.inspect.describe`)."""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``odenet inspect`` and its options on the subcommand set ``sub``."""
    p = sub.add_parser("inspect", help="print the tree of an odenet HDF5 file with shapes, dims and attributes; "
                                       "verify every dataset's checksum",
                       description="Print the tree of an odenet HDF5 file, read every dataset verifying its "
                                   "checksum, and list stale temporary files of interrupted writes. Exit status: "
                                   "0 all verified, 1 a dataset cannot be read or fails its checksum, 2 not an "
                                   "odenet file.")
    p.add_argument("file", help="the odenet HDF5 file")
    p.add_argument("--json", action="store_true",
                   help="print the whole tree as JSON instead: every group (type, attributes, full config) and "
                        "dataset (shape, dtype, dims, attributes), and the verdict (ok, damaged, unchecked)")
    p.add_argument("--full", action="store_true", help="print long attributes and configs in full (no '...')")
    p.add_argument("--clean", action="store_true",
                   help="remove the stale temporary files .FILE.*.tmp of interrupted writes beside FILE "
                        "(only those; under FILE's writer's lock)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the tree (or ``--json``) and the verdict.  Exit 0: all datasets read and verified; 1: some
    dataset cannot be read or fails its checksum (named on stderr), or ``--clean`` found a writer
    running; 2: the file cannot be opened as an odenet file."""
    from analysis.io.inspect import check, describe

    try:
        found = check(args.file, clean=args.clean, full=args.full)
        described = describe(args.file) if args.json else None
    except OSError as exc:
        print(f"odenet inspect: error: {exc}", file=sys.stderr)
        return 2
    if described is not None:  # machine-readable: the whole tree, then the verdict
        described.update(ok=found.ok, damaged=found.damaged, unchecked=found.unchecked,
                         temp_files=[str(t) for t in found.temp_files], writer_active=found.writer_active,
                         removed=[str(t) for t in found.removed])
        print(json.dumps(described, indent=1, allow_nan=True))
    else:
        print(found.text)
    if found.unchecked and described is None:
        print(f"note: {len(found.unchecked)} dataset(s) carry no checksum (written by another tool): "
              + ", ".join(found.unchecked))
    if found.temp_files and described is None:
        names = ", ".join(str(t) for t in found.temp_files)
        if found.writer_active:
            print(f"temporary files beside the file, in use by a writer that holds {args.file}.lock now: {names}")
        elif found.removed:
            print(f"removed {len(found.removed)} stale temporary file(s) of interrupted writes: {names}")
        else:
            print(f"{len(found.temp_files)} stale temporary file(s) of interrupted writes "
                  f"(odenet inspect --clean removes them): {names}")
    status = 0
    if found.damaged:
        print(f"odenet inspect: error: {len(found.damaged)} object(s) of {args.file} cannot be read or fail their "
              f"checksum (the file is damaged):", file=sys.stderr)
        for line in found.damaged:
            print(f"  {line}", file=sys.stderr)
        status = 1
    if args.clean and found.writer_active:
        print(f"odenet inspect: error: a writer holds {args.file}.lock; nothing removed, try again later",
              file=sys.stderr)
        status = 1
    return status

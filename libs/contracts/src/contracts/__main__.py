"""`python -m contracts export [DIR]`: regenerate the JSON Schemas and AsyncAPI document."""

import argparse
from pathlib import Path

from contracts.schema_export import export


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m contracts")
    commands = parser.add_subparsers(dest="command", required=True)
    export_command = commands.add_parser("export", help="write docs/contracts")
    export_command.add_argument("out_dir", type=Path, nargs="?", default=Path("docs/contracts"))
    args = parser.parse_args()
    written = export(args.out_dir)
    print(f"wrote {len(written)} files to {args.out_dir}")


if __name__ == "__main__":
    main()

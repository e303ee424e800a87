"""python -m mesh_cli (what ./mesh runs)."""

from mesh_cli.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

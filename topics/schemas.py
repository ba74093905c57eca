"""`python -m topics.schemas [directory]`: write every message's JSON Schema (docs/schemas)."""

from __future__ import annotations

from topics._schemas import main

if __name__ == "__main__":
    raise SystemExit(main())

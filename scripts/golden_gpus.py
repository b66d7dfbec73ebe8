"""Write tests/golden/gpus_shared.json: for each GPU of the shared catalogue this project's table
was built from (../shared/data/gpus.json, with its sources), the fields it had and a hash of
their values, so that tests/test_gpus.py can check the bundled table still carries every one of
them unchanged without the shared folder being present.

    python scripts/golden_gpus.py [path/to/shared/gpus.json]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "golden" / "gpus_shared.json"


def fingerprint(record: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "gpus.json"
    shared = json.loads(source.read_text(encoding="utf-8"))
    rows = [{"name": r["name"], "fields": sorted(r), "sha256": fingerprint(r)} for r in shared]
    OUT.write_text(json.dumps({"source": "../shared/data/gpus.json", "gpus": rows}, indent=1)
                   + "\n", encoding="utf-8")
    print(f"{len(rows)} GPUs -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Write docs/openapi.json, the service's OpenAPI document: python docs/gen_openapi.py.

tests/test_serve.py checks that the committed file is the one the service generates.
"""

from __future__ import annotations

from pathlib import Path

from fairalloc.serve import openapi_json

if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "openapi.json"
    target.write_text(openapi_json(), encoding="utf-8")
    print(f"wrote {target}")

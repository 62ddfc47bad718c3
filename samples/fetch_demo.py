"""Fetch the sample video: Sports2D's demo.mp4 (BSD-3-Clause) from the sports2d wheel on PyPI.

The repository carries no third-party media, so `make samples` downloads the wheel with pip,
extracts that one file and checks its SHA-256 before it is used.
"""
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "sports2d==0.8.34"
MEMBER = "Sports2D/Demo/demo.mp4"
SHA256 = "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039"


def main(target: str) -> int:
    out = Path(target)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "-d", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("sports2d-*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        print(f"{wheel.name}:{MEMBER}: SHA-256 {digest} != expected {SHA256}", file=sys.stderr)
        return 1
    partial = out.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(out)
    print(f"wrote {out} ({len(data)} bytes, sha256 ok)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "samples/demo.mp4"))

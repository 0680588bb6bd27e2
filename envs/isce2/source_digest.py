"""Content digest of an ISCE2 source archive: the same for every packaging of one release.

GitHub's archive of a tag and a `git archive` of it hold the same files but differ in their
bytes (gzip headers, timestamps), so the build verifies what is inside: sha256 over the sorted
(path below the top folder, kind, content or link target) of every member. Standard library
only: it runs with whatever python3 the machine has, before anything is installed.

    python3 source_digest.py ARCHIVE      # prints the digest
"""

from __future__ import annotations

import hashlib
import sys
import tarfile


def tree_digest(archive: str) -> str:
    entries: list[tuple[str, str, str]] = []
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            path = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not path or member.isdir():
                continue
            if member.issym() or member.islnk():
                entries.append((path, "link", member.linkname.split("/", 1)[-1] if member.islnk() else member.linkname))
            elif member.isfile():
                data = tar.extractfile(member)
                content = hashlib.sha256(data.read() if data else b"").hexdigest()
                entries.append((path, "file", content))
    digest = hashlib.sha256()
    for path, kind, value in sorted(entries):
        digest.update(f"{path}\0{kind}\0{value}\n".encode())
    return digest.hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: source_digest.py ARCHIVE")
    try:
        print(tree_digest(sys.argv[1]))
    except (OSError, tarfile.TarError) as exc:
        sys.exit(f"cannot read {sys.argv[1]} as a source archive: {exc}")

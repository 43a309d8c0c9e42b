#!/usr/bin/env python3
"""Write a zip archive of DIR's files under the top folder NAME, reproducibly (sorted names,
fixed timestamps, deflated), or list one.

Usage: mkzip.py OUT.zip DIR NAME
       mkzip.py --list ZIP        (one member name per line)
"""
import os
import sys
import zipfile

EPOCH = (2026, 1, 1, 0, 0, 0)


def write(out, src, name):
    files = []
    for root, _, names in os.walk(src):
        for n in names:
            files.append(os.path.relpath(os.path.join(root, n), src))
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in sorted(files):
            info = zipfile.ZipInfo(name + "/" + rel.replace(os.sep, "/"), EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(os.path.join(src, rel), "rb") as f:
                z.writestr(info, f.read())
    os.replace(tmp, out)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        with zipfile.ZipFile(sys.argv[2]) as z:
            bad = z.testzip()
            if bad is not None:
                sys.exit(f"mkzip: {sys.argv[2]}: {bad} is corrupt")
            for n in z.namelist():
                print(n)
    elif len(sys.argv) == 4:
        write(*sys.argv[1:])
    else:
        sys.exit(__doc__)


main()

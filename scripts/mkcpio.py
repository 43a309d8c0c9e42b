#!/usr/bin/env python3
"""Write a newc cpio archive (an initramfs) from a small spec, without root; gzip-compressed
when OUT ends in .gz.

Spec lines (like the kernel's gen_init_cpio):
  dir   PATH MODE
  file  PATH HOST_SOURCE MODE
  slink PATH TARGET
  nod   PATH MODE c|b MAJOR MINOR
Usage: mkcpio.py OUT.cpio[.gz] < spec
"""
import gzip
import os
import stat
import sys

def header(ino, mode, nlink, size, rmaj, rmin, name):
    namesize = len(name) + 1
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, namesize, 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    data = hdr + name.encode() + b"\0"
    return data + b"\0" * (-len(data) % 4)

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = bytearray()
    ino = 1
    for lineno, line in enumerate(sys.stdin, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        kind, path = parts[0], parts[1].lstrip("/")
        body = b""
        rmaj = rmin = 0
        try:
            if kind == "dir":
                mode = stat.S_IFDIR | int(parts[2], 8)
            elif kind == "file":
                with open(parts[2], "rb") as f:
                    body = f.read()
                mode = stat.S_IFREG | int(parts[3], 8)
            elif kind == "slink":
                body = parts[2].encode()
                mode = stat.S_IFLNK | 0o777
            elif kind == "nod":
                mode = (stat.S_IFCHR if parts[3] == "c" else stat.S_IFBLK) | int(parts[2], 8)
                rmaj, rmin = int(parts[4]), int(parts[5])
            else:
                raise ValueError(f"unknown entry kind {kind!r}")
        except (IndexError, ValueError, OSError) as e:
            sys.exit(f"mkcpio: spec line {lineno}: {e}")
        nlink = 2 if kind == "dir" else 1
        out += header(ino, mode, nlink, len(body), rmaj, rmin, path)
        out += body + b"\0" * (-len(body) % 4)
        ino += 1
    out += header(0, 0, 1, 0, 0, 0, "TRAILER!!!")
    tmp = sys.argv[1] + ".tmp"
    if sys.argv[1].endswith(".gz"):
        with gzip.open(tmp, "wb", compresslevel=6) as f:
            f.write(out)
    else:
        with open(tmp, "wb") as f:
            f.write(out)
    os.replace(tmp, sys.argv[1])

if __name__ == "__main__":
    main()

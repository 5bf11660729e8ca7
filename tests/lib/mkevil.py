#!/usr/bin/env python3
"""mkevil.py OUT KIND - an OCI image layout (tag "latest") of one gzip
layer that a build must refuse, with an honest diff_id and digests:
  dotdot    a file named ../hypr-evil-dotdot
  hardlink  a hard link to /etc/shadow
  whdir     a file inside a directory named as a whiteout (etc/.wh.x/f)
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out, kind = sys.argv[1:3]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    d = tarfile.TarInfo("etc")
    d.type = tarfile.DIRTYPE
    d.mode = 0o755
    t.addfile(d)
    if kind == "dotdot":
        f = tarfile.TarInfo("../hypr-evil-dotdot")
        f.size = 5
        t.addfile(f, io.BytesIO(b"evil\n"))
    elif kind == "whdir":
        f = tarfile.TarInfo("etc/.wh.x/f")
        f.size = 5
        t.addfile(f, io.BytesIO(b"evil\n"))
    else:
        h = tarfile.TarInfo("etc/shadow-link")
        h.type = tarfile.LNKTYPE
        h.linkname = "/etc/shadow"
        t.addfile(h)
tar = buf.getvalue()
gz = gzip.compress(tar, mtime=0)
os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)


def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)


layer, lsize = put(gz)
config, csize = put(json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
}, separators=(",", ":")).encode())
man, msize = put(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": config, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer, "size": lsize}],
}, separators=(",", ":")).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man,
        "size": msize, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
print(layer)

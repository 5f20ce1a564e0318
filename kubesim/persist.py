"""The simulator's etcd on disk: objects and the revision, kept across restarts (``--state-file``).

A real API server restart keeps etcd, so resourceVersions go on rising, and a client that
re-watches from a version it saw before the restart gets ``ERROR 410 "too old resource
version: 241 (247)"``: the new server's watch cache starts at the current revision (measured
against a real kube-apiserver, docs/kubesim.md). With a state file the simulator does the same:
it loads the objects and the revision at start, its history starts empty at that revision, and
it writes the file back (atomically) when it stops. Without one it is a new cluster on an
empty etcd, whose revisions start at 1. A simulator that is killed rather than stopped loses
what changed since it started.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubesim.store import Store

FORMAT = "kubesim-state/v1"


class StateError(RuntimeError):
    """A state file that cannot be read; the message names the file and the reason."""


def save(store: Store, path: Path | str) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    head = json.dumps({"format": FORMAT, "revision": store.rv}, separators=(",", ":"))
    with open(tmp, "wb") as out:
        out.write(head[:-1].encode() + b',"objects":{')
        for i, (plural, table) in enumerate(sorted(store.objects.items())):
            out.write((b"," if i else b"") + json.dumps(plural).encode() + b":[")
            out.write(b",".join(obj.raw for obj in table.values()))
            out.write(b"]")
        out.write(b"}}")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


def load(store: Store, path: Path | str) -> bool:
    """Fill ``store`` from ``path``; False when there is no such file yet (a first start)."""
    source = Path(path)
    try:
        doc: Any = json.loads(source.read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read state file {source}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"{source} is not a kubesim state file (format {FORMAT})")
    try:
        store.load(int(doc["revision"]), dict(doc["objects"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"state file {source} is damaged: {exc!r}") from exc
    return True

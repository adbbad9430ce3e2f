"""A loopback Hugging Face Hub for tests: the subset of the HTTP protocol huggingface_hub 2.4 speaks.

See docs/hub_protocol.md. Repos live on disk under `root` (content-addressed blobs, one JSON tree per
commit, a refs file per repo) with real commits: a new 40-hex sha per commit, branches move, every old commit stays
readable by its sha. Uploads go through the plain LFS batch API (clients set `HF_HUB_DISABLE_XET=1`); writes, and
reads of private repos, need `Authorization: Bearer <token>`. `fail_next[route] = n` makes the next n requests to a
route ("lfs_put", "commit", "lfs_batch", ...) answer 500, for testing failures mid-upload; `stall_next[route] = n`
makes them read the request and never answer (until `stop()`), for testing client timeouts.

Test-only code: it must not import huggingface_hub (the client reads its environment at import).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Optional
from urllib.parse import unquote, urlsplit

__all__ = ["LoopbackHub", "Repo", "FileEntry"]

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".png")
LFS_MIN_SIZE = 10_000_000


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `path` so that concurrent readers see the old or the new content, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit: its content lives in the server's blob store under its sha256."""

    blob: Path
    lfs: bool

    @property
    def content(self) -> bytes:
        return self.blob.read_bytes()

    @property
    def sha256(self) -> str:
        return self.blob.name

    @property
    def git_sha1(self) -> str:
        content = self.content
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()

    @property
    def etag(self) -> str:
        """The Hub's ETag: the sha256 for LFS files, the git blob sha1 for regular ones."""
        return self.sha256 if self.lfs else self.git_sha1


class Repo:
    """A model repo on disk: `repo.json` (visibility), `refs.json` (branch -> sha), `commits/<sha>.json` (trees)."""

    def __init__(self, root: Path, blobs: Path):
        self.root, self.blobs = root, blobs

    @property
    def private(self) -> bool:
        return json.loads((self.root / "repo.json").read_text())["private"]

    @property
    def refs(self) -> Dict[str, str]:
        return json.loads((self.root / "refs.json").read_text())

    def set_ref(self, branch: str, sha: str) -> None:
        _write_atomic(self.root / "refs.json", json.dumps({**self.refs, branch: sha}).encode())

    def resolve(self, revision: str) -> Optional[str]:
        """The commit sha of a branch name or of a sha; None when neither exists."""
        sha = self.refs.get(revision, revision)
        return sha if re.fullmatch(r"[0-9a-f]{40}", sha) and (self.root / "commits" / f"{sha}.json").is_file() else None

    def tree(self, sha: str) -> Dict[str, FileEntry]:
        files = json.loads((self.root / "commits" / f"{sha}.json").read_text())["files"]
        return {path: FileEntry(self.blobs / f["sha256"], f["lfs"]) for path, f in files.items()}

    def write_commit(self, sha: str, parent: Optional[str], summary: str, tree: Dict[str, FileEntry]) -> None:
        files = {path: {"sha256": entry.sha256, "lfs": entry.lfs} for path, entry in sorted(tree.items())}
        record = {"parent": parent, "summary": summary, "files": files}
        _write_atomic(self.root / "commits" / f"{sha}.json", json.dumps(record, indent=1).encode())


class LoopbackHub:
    """The server state under `root`; `start()` serves it on 127.0.0.1 at a free port (`endpoint`)."""

    def __init__(self, token: str, root: Path):
        self.token = token
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.fail_next: Dict[str, int] = {}
        self.stall_next: Dict[str, int] = {}
        self.released = threading.Event()  # set by stop(): stalled requests end without an answer
        self.lock = threading.Lock()
        self._counter = 0
        self.server: Optional[ThreadingHTTPServer] = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def repos(self) -> Dict[str, Repo]:
        return {f"{d.parent.name}/{d.name}": Repo(d, self.blobs) for d in sorted(self.root.glob("repos/*/*"))}

    def start(self) -> "LoopbackHub":
        hub = self

        class Handler(_Handler):
            state = hub

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def store_blob(self, content: bytes) -> Path:
        blob = self.blobs / hashlib.sha256(content).hexdigest()
        if not blob.exists():
            _write_atomic(blob, content)
        return blob

    def new_sha(self, *parts: str) -> str:
        self._counter += 1
        return hashlib.sha1(":".join((*parts, str(self._counter))).encode()).hexdigest()

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        """A repo with one empty commit on `main`, built aside and moved into place whole."""
        staging = Path(tempfile.mkdtemp(dir=self.root))
        (staging / "commits").mkdir()
        (staging / "repo.json").write_text(json.dumps({"private": private}))
        sha = self.new_sha(repo_id, "initial commit")
        Repo(staging, self.blobs).write_commit(sha, None, "initial commit", {})
        (staging / "refs.json").write_text(json.dumps({"main": sha}))
        root = self.root / "repos" / repo_id
        root.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(root)
        return Repo(root, self.blobs)


class _Handler(BaseHTTPRequestHandler):
    state: LoopbackHub
    protocol_version = "HTTP/1.1"
    _cached_body: Optional[bytes] = None

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # --- plumbing -------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        """The request body, read once (a reply must drain it to keep the connection usable)."""
        if self._cached_body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._cached_body = self.rfile.read(length) if length else b""
        return self._cached_body

    def _send(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def _require_write(self) -> bool:
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return self._authorized()

    def _injected(self, faults: Dict[str, int], route: str) -> bool:
        """Whether this request to `route` gets an injected fault (`faults` is fail_next or stall_next)."""
        with self.state.lock:
            if faults.get(route, 0) > 0:
                faults[route] -= 1
                return True
        return False

    def _repo(self, repo_id: str) -> Optional[Repo]:
        """The repo, or None after answering 404 (missing) / 401 (private, no valid token)."""
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if repo is None else 401, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        return repo

    def _revision(self, repo: Repo, rev: str, headers: Optional[Dict[str, str]] = None) -> Optional[str]:
        sha = repo.resolve(rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", headers)
        return sha

    # --- routes ---------------------------------------------------------------------------------------------
    ROUTES = (
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)", "preupload"),
        ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)", "commit"),
        ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/branch/(?P<branch>.+)", "create_branch"),
        ("POST", r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", "tree"),
        ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>.+))?", "info"),
        ("GET", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", "resolve"),
        ("HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", "resolve"),
    )

    def do_HEAD(self) -> None:
        self._route()

    do_GET = do_POST = do_PUT = do_HEAD

    def _route(self) -> None:
        self._cached_body = None  # one handler serves every request of a keep-alive connection
        path = unquote(urlsplit(self.path).path)
        for verb, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == self.command and match:
                if self._injected(self.state.stall_next, name):
                    self._body()
                    self.state.released.wait()  # the client sees an open connection that never answers
                    self.close_connection = True
                elif self._injected(self.state.fail_next, name):
                    self._body()
                    # Retry-After: 0 keeps the client's retries of a failing PUT at one second each
                    self._error(500, "InternalError", f"injected failure of {name}", {"Retry-After": "0"})
                else:
                    getattr(self, name)(**match.groupdict())
                return
        self._error(404, "EntryNotFound", f"no route for {self.command} {path}")

    def whoami(self) -> None:
        if self._require_write():
            self._json(200, {"type": "user", "name": "tester", "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._require_write():
            return
        repo_id = f"{body.get('organization') or 'tester'}/{body['name']}"
        url = {"url": f"{self.state.endpoint}/{repo_id}", "name": repo_id}
        with self.state.lock:
            if repo_id in self.state.repos:
                self._json(409, {**url, "error": "You already created this model repo"})
                return
            self.state.create_repo(repo_id, bool(body.get("private")) or body.get("visibility") == "private")
        self._json(200, url)

    def validate_yaml(self) -> None:
        self._body()
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        body = json.loads(self._body())
        if not self._require_write() or self._repo(repo) is None:
            return
        files = [{"path": f["path"], "shouldIgnore": False,
                  "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) or f["size"] > LFS_MIN_SIZE else "regular"}
                 for f in body["files"]]
        self._json(200, {"files": files, "commitOid": None})

    def lfs_batch(self, repo: str) -> None:
        body = json.loads(self._body())
        if not self._require_write() or self._repo(repo) is None:
            return
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if not (self.state.blobs / obj["oid"]).is_file():  # leave `actions` out for a blob already stored
                entry["actions"] = {"upload": {"href": f"{self.state.endpoint}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            self._error(400, "BadRequest", f"sha256 of the uploaded bytes does not match {oid}")
            return
        self.state.store_blob(data)
        self._send(200)

    def commit(self, repo: str, rev: str) -> None:
        """Apply an ndjson commit to branch `rev`: every operation is checked before the branch moves."""
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not self._require_write():
            return
        target = self._repo(repo)
        if target is None:
            return
        with self.state.lock:
            parent = target.refs.get(rev)  # commits go to a branch
            if parent is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return
            tree, summary = target.tree(parent), ""
            for line in lines:
                key, value = line["key"], line.get("value", {})
                if key == "header":
                    summary = value.get("summary", "")
                elif key == "file":
                    tree[value["path"]] = FileEntry(self.state.store_blob(base64.b64decode(value["content"])), False)
                elif key == "lfsFile":
                    blob = self.state.blobs / value["oid"]
                    if not blob.is_file():
                        self._error(400, "BadRequest", f"LFS object {value['oid']} of {value['path']} was not uploaded")
                        return
                    tree[value["path"]] = FileEntry(blob, True)
                elif key == "deletedFile":
                    tree.pop(value["path"], None)
                elif key == "deletedFolder":
                    tree = {p: e for p, e in tree.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            sha = self.state.new_sha(repo, parent, summary)
            target.write_commit(sha, parent, summary, tree)
            target.set_ref(rev, sha)
        self._json(200, {"commitUrl": f"{self.state.endpoint}/{repo}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None})

    def create_branch(self, repo: str, branch: str) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._require_write():
            return
        target = self._repo(repo)
        if target is None:
            return
        with self.state.lock:
            if branch in target.refs:
                self._error(409, "Conflict", f"Reference refs/heads/{branch} already exists")
                return
            start = self._revision(target, body.get("startingPoint") or "main")
            if start is not None:
                target.set_ref(branch, start)
                self._json(200, {})

    def info(self, repo: str, rev: Optional[str] = None) -> None:
        target = self._repo(repo)
        sha = target and self._revision(target, rev or "main")
        if sha:
            self._json(200, {"id": repo, "modelId": repo, "sha": sha, "private": target.private,
                             "siblings": [{"rfilename": p} for p in sorted(target.tree(sha))]})

    def tree(self, repo: str, rev: str, sub: Optional[str] = None) -> None:
        target = self._repo(repo)
        sha = target and self._revision(target, rev)
        if not sha:
            return
        prefix = (sub or "").strip("/")
        entries = []
        for path, entry in sorted(target.tree(sha).items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            size = entry.blob.stat().st_size
            item = {"type": "file", "path": path, "size": size, "oid": entry.git_sha1}
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": size, "pointerSize": 134}
            entries.append(item)
        if prefix and not entries:
            self._error(404, "EntryNotFound", f"{prefix} does not exist at {rev}")
            return
        self._json(200, entries)

    def resolve(self, repo: str, rev: str, file: str) -> None:
        target = self._repo(repo)
        sha = target and self._revision(target, rev)
        if not sha:
            return
        entry = target.tree(sha).get(file)
        if entry is None:
            self._error(404, "EntryNotFound", f"{file} does not exist at {rev}", {"X-Repo-Commit": sha})
            return
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry.etag}"'}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.blob.stat().st_size)
        self._send(200, entry.content, headers, content_type="application/octet-stream")

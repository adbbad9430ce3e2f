"""A loopback Hugging Face Hub for tests: the subset of the HTTP protocol huggingface_hub 2.4 speaks.

See shared/notes/hub_protocol.md. Repos live in memory with real commits (a new 40-hex sha per commit, `main`
moves, every old commit stays readable), uploads go through the plain LFS batch API (clients set
`HF_HUB_DISABLE_XET=1`), writes and private reads need `Authorization: Bearer <token>`, and `fail_next` makes the
next request of a kind ("put" or "commit") answer 500, for testing failures mid-upload.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".png")


@dataclass
class FileEntry:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.content) + self.content).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_sha1


@dataclass
class Repo:
    private: bool
    commits: Dict[str, Dict[str, FileEntry]] = field(default_factory=dict)  # sha -> tree
    history: list = field(default_factory=list)  # shas, oldest first
    refs: Dict[str, str] = field(default_factory=dict)


class LoopbackHub:
    """The server state; `start()` serves it on 127.0.0.1 at a free port (`endpoint`)."""

    def __init__(self, token: str):
        self.token = token
        self.repos: Dict[str, Repo] = {}
        self.lfs_objects: Dict[str, bytes] = {}
        self.fail_next: Dict[str, int] = {}
        self.lock = threading.Lock()
        self._counter = 0
        self.server: Optional[ThreadingHTTPServer] = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackHub":
        hub = self

        class Handler(_Handler):
            state = hub

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def new_sha(self, seed: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{seed}:{self._counter}".encode()).hexdigest()

    def resolve(self, repo: Repo, revision: str) -> Optional[str]:
        if revision in repo.refs:
            return repo.refs[revision]
        return revision if revision in repo.commits else None


class _Handler(BaseHTTPRequestHandler):
    state: LoopbackHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # --- plumbing -------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
              content_type: str = "application/json", head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, code: str, message: str, head: bool = False,
               headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, b"" if head else json.dumps({"error": message}).encode(),
                   {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})}, head=head)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def _failing(self, kind: str) -> bool:
        with self.state.lock:
            if self.state.fail_next.get(kind, 0) > 0:
                self.state.fail_next[kind] -= 1
                return True
        return False

    def _repo(self, repo_id: str, head: bool = False) -> Optional[Repo]:
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if repo is None else 401, "RepoNotFound", f"Repository {repo_id} not found", head)
            return None
        return repo

    # --- routes ---------------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        routes: Tuple[Tuple[str, str, str], ...] = (
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
        for verb, pattern, name in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                getattr(self, name)(**match.groupdict())
                return
        self._error(404, "EntryNotFound", f"no route for {method} {path}", method == "HEAD")

    def whoami(self) -> None:
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials")
            return
        self._json(200, {"type": "user", "name": "tester", "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return
        repo_id = f"{body.get('organization') or 'tester'}/{body['name']}"
        url = {"url": f"{self.state.endpoint}/{repo_id}", "name": repo_id}
        with self.state.lock:
            if repo_id in self.state.repos:
                self._json(409, {**url, "error": "You already created this model repo"})
                return
            repo = Repo(private=bool(body.get("private")) or body.get("visibility") == "private")
            sha = self.state.new_sha(repo_id)
            repo.commits[sha], repo.history, repo.refs["main"] = {}, [sha], sha
            self.state.repos[repo_id] = repo
        self._json(200, url)

    def validate_yaml(self) -> None:
        self._body()
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        body = json.loads(self._body())
        if self._repo(repo) is None:
            return
        files = [{"path": f["path"], "shouldIgnore": False,
                  "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) or f["size"] > 10_000_000 else "regular"}
                 for f in body["files"]]
        self._json(200, {"files": files, "commitOid": None})

    def lfs_batch(self, repo: str) -> None:
        body = json.loads(self._body())
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials")
            return
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.state.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self.state.endpoint}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def lfs_put(self, oid: str) -> None:
        data = self._body()
        if self._failing("put"):
            self._error(500, "InternalError", "storage backend unavailable")
            return
        if hashlib.sha256(data).hexdigest() != oid:
            self._error(400, "BadRequest", "sha256 mismatch")
            return
        with self.state.lock:
            self.state.lfs_objects[oid] = data
        self._send(200)

    def commit(self, repo: str, rev: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return
        target = self._repo(repo)
        if target is None:
            return
        if self._failing("commit"):
            self._error(500, "InternalError", "commit failed, nothing was applied")
            return
        with self.state.lock:
            parent = target.refs.get(rev)  # commits go to a branch
            if parent is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return
            tree = dict(target.commits[parent])
            for line in lines:
                key, value = line["key"], line.get("value", {})
                if key == "file":
                    tree[value["path"]] = FileEntry(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    if value["oid"] not in self.state.lfs_objects:
                        self._error(400, "BadRequest", f"LFS object {value['oid']} was not uploaded")
                        return
                    tree[value["path"]] = FileEntry(self.state.lfs_objects[value["oid"]], lfs=True)
                elif key == "deletedFile":
                    tree.pop(value["path"], None)
                elif key == "deletedFolder":
                    tree = {p: e for p, e in tree.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            sha = self.state.new_sha(repo)
            target.commits[sha] = tree
            target.history.append(sha)
            target.refs[rev] = sha
        self._json(200, {"commitUrl": f"{self.state.endpoint}/{repo}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None})

    def create_branch(self, repo: str, branch: str) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return
        target = self._repo(repo)
        if target is None:
            return
        with self.state.lock:
            if branch in target.refs:
                self._error(409, "Conflict", f"Reference refs/heads/{branch} already exists")
                return
            start = self.state.resolve(target, body.get("startingPoint") or "main")
            target.refs[branch] = start
        self._json(200, {})

    def info(self, repo: str, rev: Optional[str] = None) -> None:
        target = self._repo(repo)
        if target is None:
            return
        sha = self.state.resolve(target, rev or "main")
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        self._json(200, {"id": repo, "modelId": repo, "sha": sha, "private": target.private,
                         "siblings": [{"rfilename": p} for p in sorted(target.commits[sha])]})

    def tree(self, repo: str, rev: str, sub: Optional[str] = None) -> None:
        target = self._repo(repo)
        if target is None:
            return
        sha = self.state.resolve(target, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        prefix = (sub or "").strip("/")
        entries = []
        for path, entry in sorted(target.commits[sha].items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            item = {"type": "file", "path": path, "size": len(entry.content), "oid": entry.git_sha1}
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": len(entry.content), "pointerSize": 134}
            entries.append(item)
        if prefix and not entries:
            self._error(404, "EntryNotFound", f"{prefix} does not exist at {rev}")
            return
        self._json(200, entries)

    def resolve(self, repo: str, rev: str, file: str) -> None:
        head = self.command == "HEAD"
        target = self._repo(repo, head)
        if target is None:
            return
        sha = self.state.resolve(target, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return
        entry = target.commits[sha].get(file)
        if entry is None:
            self._error(404, "EntryNotFound", f"{file} does not exist at {rev}", head, {"X-Repo-Commit": sha})
            return
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry.etag}"'}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(len(entry.content))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(entry.content)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(entry.content)

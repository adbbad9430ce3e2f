"""Run a callback once a module is imported: now if it already is, otherwise right after its import.

`import sr_models` uses it to register the transformers classes only when transformers is imported, so that the
registration (transformers' import costs more than timm's) is paid by the programs that use transformers only.
"""
from __future__ import annotations

import importlib.abc
import sys
import threading
from typing import Callable, Dict, List

__all__ = ["when_imported"]

_callbacks: Dict[str, List[Callable[[], None]]] = {}
_lock = threading.Lock()


class _Loader(importlib.abc.Loader):
    """Wraps the module's own loader: executes the module, then the callbacks registered for it."""

    def __init__(self, loader: importlib.abc.Loader, name: str):
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self.loader  # the module keeps no trace of the wrapper
        with _lock:
            callbacks = _callbacks.pop(self.name, [])
        for callback in callbacks:
            callback()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the watched modules through the other finders and wraps their loaders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _callbacks:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


_FINDER = _Finder()


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call `callback()` after the top-level module `name` is imported (at once if it is already)."""
    if name in sys.modules:
        callback()
        return
    with _lock:
        _callbacks.setdefault(name, []).append(callback)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)

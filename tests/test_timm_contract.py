"""timm's own model test suite, run on every model sr-models registers.

`tests/test_models.py` comes from the sdist of the installed timm version, downloaded with pip at test time (cached
in pytest's cache, never copied into this repository). It runs in a subprocess beside a conftest that imports
sr_models and keeps only our models' tests, minus the inapplicable ones listed in tests/timm_inapplicable.py.
"""
import json
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import timm

from timm_inapplicable import INAPPLICABLE

REPO = Path(__file__).resolve().parents[1]

CONFTEST = '''
import json
from pathlib import Path

import sr_models
from sr_models.models import list_sr_models
from sr_models.models.segmentation import is_segmenter

OURS = set(list_sr_models())
INAPPLICABLE = json.loads((Path(__file__).parent / "inapplicable.json").read_text())


def pytest_collection_modifyitems(config, items):
    keep, drop, used = [], [], set()
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        arch = str(params.get("model_name", "")).split(".")[0]
        if arch not in OURS:
            drop.append(item)
            continue
        for i, (test, which, _) in enumerate(INAPPLICABLE):
            if item.originalname == test and (which == "all" or is_segmenter(arch)):
                drop.append(item)
                used.add(i)
                break
        else:
            keep.append(item)
    unused = [INAPPLICABLE[i][0] for i in range(len(INAPPLICABLE)) if i not in used]
    if unused:
        raise RuntimeError(f"tests/timm_inapplicable.py lists tests that match none of our models: {unused}")
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
'''


def _timm_test_models(cache_dir: Path) -> Path:
    """`tests/test_models.py` of the installed timm's sdist (downloaded once into `cache_dir`)."""
    version = timm.__version__
    target = cache_dir / f"timm-{version}-test_models.py"
    if target.is_file():
        return target
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", f"timm=={version}",
         "--dest", str(cache_dir), "--quiet"], capture_output=True, text=True, timeout=600)
    sdist = cache_dir / f"timm-{version}.tar.gz"
    if download.returncode or not sdist.is_file():
        last = (download.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"cannot download the sdist of timm=={version} with pip (this test needs PyPI): {last}")
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(f"timm-{version}/tests/test_models.py")
        if member is None:
            pytest.fail(f"{sdist} has no tests/test_models.py")
        target.write_bytes(member.read())
    return target


@pytest.fixture(scope="module")
def timm_suite(request, tmp_path_factory) -> Path:
    cache = request.config.cache
    cache_dir = cache.mkdir("timm_sdist") if cache is not None else tmp_path_factory.mktemp("timm_sdist")
    suite = tmp_path_factory.mktemp("timm_suite")
    (suite / "test_models.py").write_bytes(_timm_test_models(Path(cache_dir)).read_bytes())
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "inapplicable.json").write_text(json.dumps(INAPPLICABLE))
    (suite / "pytest.ini").write_text("[pytest]\nfilterwarnings = ignore::pytest.PytestUnknownMarkWarning\n")
    return suite


@pytest.mark.slow
def test_timm_model_suite_passes_on_every_registered_model(timm_suite):
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}  # the suite trims itself on GitHub
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    report = timm_suite / "report.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short", "-rfE",
         f"--junitxml={report}", "test_models.py"],
        cwd=timm_suite, env=env, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    suite = ET.parse(report).getroot().find("testsuite")
    ran = [case.get("name") for case in suite.iter("testcase")]
    assert int(suite.get("skipped")) == 0, "a test of timm's suite was skipped on one of our models"
    from sr_models.models import list_sr_models

    untested = [name for name in list_sr_models() if not any(f"-{name}" in case for case in ran)]
    assert not untested, f"timm's suite ran no test on {untested}"

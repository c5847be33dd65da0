"""The architecture the README describes, checked: ``pipeline/`` imports no shell, SQL lives in the SQL
layer only, and statuses are spelled in one module."""

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PIPELINE = ROOT / "pipeline"
SHELLS = {"queue_worker", "dashboard", "pages", "huey", "streamlit", "fastapi", "uvicorn"}


def _modules():
    return sorted(p for p in PIPELINE.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_pipeline_module_imports_a_shell():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & SHELLS) for p in _modules() if _imports(p) & SHELLS}
    assert offenders == {}


def test_sql_is_only_in_the_sql_layer():
    sql = re.compile(r"\.execute(many)?\(|\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    outside = [str(p.relative_to(ROOT)) for p in _modules()
               if "db" not in p.relative_to(PIPELINE).parts[:1] and sql.search(p.read_text(encoding="utf-8"))]
    assert outside == []


def test_job_statuses_are_spelled_in_one_module():
    """Outside ``jobs/states.py`` no code names a set of job statuses by their strings."""
    spelled = re.compile(r"""\(\s*["'](queued|running|retrying|succeeded|failed|cancelled)["']\s*,\s*["']"""
                         r"""(queued|running|retrying|succeeded|failed|cancelled)["']""")
    sources = [*_modules(), *(ROOT / "pages").glob("*.py"), ROOT / "queue_worker.py", ROOT / "dashboard.py"]
    offenders = [str(p.relative_to(ROOT)) for p in sources
                 if p.name != "states.py" and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_package_says_what_it_holds():
    for package in [p.parent for p in PIPELINE.rglob("__init__.py")]:
        tree = ast.parse((package / "__init__.py").read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{package.relative_to(ROOT)} has no docstring"


def test_the_sql_layer_loads_without_the_job_api_or_the_stages():
    """``db`` reads its status vocabulary from ``jobs.states``; that must not drag in the API above it."""
    probe = ("import sys, pipeline.db; "
             "print(sorted(m for m in ('pipeline.jobs.api', 'pipeline.stages.download', 'yt_dlp', 'av') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"

"""Every Python snippet of the README's 'Use it on your data' and 'Your training loop and the trainers' sections runs as written, in order, each in a fresh interpreter, in one
folder as a reader would run them (the Datalab snippet reads the audit the first one wrote): real data, real training."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

SECTIONS = ("## Use it on your data", "## Your training loop and the trainers")


def snippets() -> list[tuple[str, str]]:
    "(heading, code) of each ```python block in the sections, each up to the next top-level heading, in the README's order."
    text = (REPO/"README.md").read_text()
    out = []
    for name in SECTIONS:
        start = text.index(name)
        end = text.find("\n## ", start + len(name))
        section, heading = text[start:end if end > 0 else None], name
        for m in re.finditer(r"^(#{2,4} [^\n]*)$|^```python\n(.*?)^```$", section, flags=re.M | re.S):
            if m.group(1): heading = m.group(1).lstrip("# ").strip()
            else: out.append((heading, m.group(2)))
    return out


def test_the_section_has_the_snippets_users_look_for():
    heads = [h for h, _ in snippets()]
    assert len(heads) >= 5, heads
    for want in ("Use it on your data", "In your own training loop", "PyTorch Lightning", "Hugging Face", "Datalab"):
        assert any(want in h for h in heads), (want, heads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory): return tmp_path_factory.mktemp("readme")


@pytest.mark.slow
@pytest.mark.parametrize("heading,code", snippets(), ids=[f"{i}-{h.split()[0]}" for i, (h, _) in enumerate(snippets())])
def test_snippet_runs(heading, code, folder):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"the README snippet under '{heading}' failed:\n{code}\n--- stderr ---\n{p.stderr[-4000:]}"

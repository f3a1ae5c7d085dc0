"""The README's API tour runs as written (keeps the README true)."""
import os
import re

import pytest

import dlcore

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    if not os.path.exists(README):
        pytest.skip("README.md is not beside the tests (installed test run)")
    blocks = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)
    assert blocks, "README has no python block"
    monkeypatch.chdir(tmp_path)  # the tour writes model.safetensors
    for code in blocks:
        if code.startswith("# on a GPU machine") and not dlcore.cuda.is_available():
            continue  # the GPU tour runs where there is a device
        exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "model.safetensors").exists()

"""Test layout (see python/README.md):

- python/tests/*.py            CI tests: need only numpy, scipy, scikit-learn, safetensors, pytest.
- python/tests/framework/*.py  need TensorFlow/Keras and/or PyTorch; marked `framework`.

CI runs `pytest python/tests -m "not framework"`: with that marker expression the framework
directory is not even collected (so its imports of keras/torch never run).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))


def pytest_configure(config):
    config.addinivalue_line("markers", "framework: needs TensorFlow/Keras or PyTorch (not run in CI)")


def pytest_ignore_collect(collection_path, config):
    markexpr = (config.getoption("markexpr") or "").replace(" ", "")
    if "notframework" in markexpr and os.path.join(HERE, "framework") in str(collection_path):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    fw = os.path.join(HERE, "framework")
    for item in items:
        if str(item.fspath).startswith(fw):
            item.add_marker(pytest.mark.framework)


@pytest.fixture
def root():
    return ROOT

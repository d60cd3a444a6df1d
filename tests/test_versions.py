"""An environment with libraries too old for the course is told so at import, with the fix."""
from importlib import metadata

import pytest

from course_lib import versions


def test_this_environment_is_new_enough():
    assert versions.too_old() == {}
    versions.check()


def test_an_old_torch_is_named_with_its_fix(monkeypatch):
    real = metadata.version
    installed = {"torch": "2.4.1+cu121", "plotly": "5.24.1", "ipywidgets": "7.7.1",  # Colab's
                 "matplotlib": "3.10.0"}
    monkeypatch.setattr(metadata, "version", lambda name: installed.get(name) or real(name))
    assert versions.too_old() == {"torch": "2.4.1+cu121"}
    with pytest.raises(ImportError) as error:
        versions.check()
    assert 'pip install -U "torch>=2.5"' in str(error.value) and "Restart session" in str(error.value)


def test_a_library_not_installed_is_left_to_its_own_import(monkeypatch):
    def version(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    assert versions.too_old() == {}

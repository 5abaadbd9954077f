"""Result folders and provenance helpers: the `latest` pointer, the no-overwrite rule, run ids and the
code version outside a git checkout."""
from __future__ import annotations

import os
import re
import shutil

import pytest

from engine.services import provenance
from engine.services.results_io import ResultsWriteError, check_output_dir, point_latest, resolve_latest


def test_latest_is_a_relative_symlink_replaced_atomically(tmp_path):
    for run_id in ("run-a", "run-b"):
        (tmp_path / run_id).mkdir()
        assert point_latest(tmp_path, run_id) == "symlink"
    assert os.readlink(tmp_path / "latest") == "run-b"            # relative: the folder can be moved
    assert resolve_latest(tmp_path) == (tmp_path / "run-b").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run-a", "run-b"]   # no temp left


def test_latest_falls_back_to_a_pointer_file_where_symlinks_are_refused(tmp_path, monkeypatch):
    (tmp_path / "run-a").mkdir()

    def refuse(*args, **kwargs):
        raise OSError(1, "symbolic links are not permitted here")

    monkeypatch.setattr(os, "symlink", refuse)
    assert point_latest(tmp_path, "run-a") == "pointer file"
    assert (tmp_path / "latest").read_text() == "run-a\n"
    assert resolve_latest(tmp_path) == tmp_path / "run-a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run-a"]


def test_a_real_latest_folder_is_never_replaced(tmp_path):
    (tmp_path / "latest").mkdir()
    with pytest.raises(OSError, match="real folder"):
        point_latest(tmp_path, "run-a")


def test_output_folder_rules(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper")                  # does not exist yet: fine
    check_output_dir(tmp_path)                                     # empty: fine
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ResultsWriteError, match="already holds files"):
        check_output_dir(tmp_path)
    check_output_dir(tmp_path, overwrite=True)
    with pytest.raises(ResultsWriteError, match="is a file"):
        check_output_dir(tmp_path / "summary.json" / "x")


def test_run_ids_sort_by_time_and_do_not_collide():
    ids = {provenance.new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", i) for i in ids)


def test_code_version_outside_a_checkout_falls_back_without_failing(tmp_path, monkeypatch):
    version = provenance.code_version.__wrapped__(tmp_path)       # not a git repository
    assert version["source"] in ("package", "unknown")
    monkeypatch.setenv("PATH", str(tmp_path))                      # no git binary at all
    assert shutil.which("git") is None
    assert provenance.code_version.__wrapped__(tmp_path)["source"] in ("package", "unknown")
    here = provenance.code_version.__wrapped__(provenance.SOURCE_ROOT)
    assert here["source"] in ("git", "package", "unknown")

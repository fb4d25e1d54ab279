"""The comparison scripts' saving: a second run on the same day must not overwrite the first."""

import os
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts")
sys.path.insert(0, SCRIPTS)
peers = pytest.importorskip("compare_peers")


def test_unused_stem_skips_every_saved_name(tmp_path):
    stem = str(tmp_path / "2026-01-01_peers")
    assert peers.unused_stem(stem) == stem
    (tmp_path / "2026-01-01_peers.md").write_text("first run")
    assert peers.unused_stem(stem) == stem + "_2"
    (tmp_path / "2026-01-01_peers_2.json").write_text("{}")
    assert peers.unused_stem(stem) == stem + "_3"
    # the earlier files are left as they were
    assert (tmp_path / "2026-01-01_peers.md").read_text() == "first run"

"""The Ray Data executor gives the same documents as the local one (Ray started locally with 2 CPUs).

    .venv/bin/pytest tests/test_rosy_ray.py
"""

import pyarrow.parquet as pq
import pytest
from hyperlora.data_gen.rosy.pipeline import run_pipeline

from tests.test_rosy import KIND, UNKIND, FakeRewriter, write_jsonl

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -e '.[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_matches_local(tmp_path, local_ray):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, KIND + UNKIND + ["", "   "] + KIND[:2])
    local = run_pipeline([src], tmp_path / "local", rewriter=FakeRewriter(), batch_size=4, progress=False)
    remote = run_pipeline([src], tmp_path / "ray", rewriter=FakeRewriter(), executor="ray", batch_size=4,
                          progress=False)
    for key in ("input", "by_route", "by_reason", "malformed", "rewrite_method", "threshold"):
        assert local[key] == remote[key], key
    a = pq.read_table(tmp_path / "local" / "documents.parquet").to_pylist()
    b = pq.read_table(tmp_path / "ray" / "documents.parquet").to_pylist()
    assert len(a) == len(b) == 12
    for x, y in zip(a, b):
        for key in ("n", "id", "text", "route", "reason", "rewrite", "cluster", "scorer_version"):
            assert x[key] == y[key], (key, x["id"])
        if x["rosiness"] is not None:
            assert y["rosiness"] == pytest.approx(x["rosiness"], abs=1e-5)

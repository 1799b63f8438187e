"""The large-teacher measurement at a reduced size (full size: README, 'Large teachers')."""

import pytest

from recbole_distill.benchmark.large_teacher import measure


def test_large_teacher_script_at_a_reduced_size(tmp_path):
    samples, k, items, dim = 20_000, 20, 5_000, 32
    result = measure(samples=samples, k=k, items=items, users=400, dim=dim, batch_size=256, folder=tmp_path)
    assert result["samples"] == samples  # 400 histories of 51 interactions: a target at each but the first
    # the memory formula of README: 8K + 4K + 4 bytes per sample for the joined fields ...
    assert result["teacher_fields_mib"] == pytest.approx(samples * (12 * k + 4) / 2**20)
    # ... and 4 d bytes per item for the aligned embedding table (every item of the catalogue is used)
    assert result["embedding_table_mib"] == pytest.approx((items + 1) * dim * 4 / 2**20)  # + RecBole's padding row
    assert result["artifact_mib"]["topk.npy"] == pytest.approx(samples * k * 4 / 2**20, rel=0.01)
    assert set(result["teacher_parts"]) == {"ranking join", "embedding alignment"}
    assert all(ms > 0 for ms in result["batch_gather_ms"].values())
    assert (tmp_path / "teacher" / "teacher.yaml").is_file()

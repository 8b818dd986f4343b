"""Hello-probe overlap: the suffix-array search equals brute force and never matches across documents.

    .venv/bin/pytest tests/test_evals_probe.py -q
"""

import random

import numpy as np
from hyperlora.evals.probe import CorpusIndex, longest_common_span_naive, suffix_array


def test_suffix_array_sorts_suffixes():
    rng = random.Random(0)
    for n in (1, 2, 7, 50):
        seq = [rng.randrange(3) for _ in range(n)]
        sa = suffix_array(np.asarray(seq))
        assert [seq[i:] for i in sa] == sorted(seq[i:] for i in range(n))


def test_longest_overlap_matches_brute_force():
    rng = random.Random(1)
    docs = [[rng.randrange(5) for _ in range(rng.randrange(1, 30))] for _ in range(25)]
    index = CorpusIndex(docs)
    for _ in range(300):
        q = [rng.randrange(5) for _ in range(rng.randrange(0, 25))]
        if rng.random() < 0.5:
            d = rng.choice(docs)
            q = q[:4] + d[2:20] + q[4:]
        assert index.longest_overlap(q) == longest_common_span_naive(q, docs)


def test_spans_do_not_cross_documents_and_duplicates_collapse():
    index = CorpusIndex([[1, 2, 3], [4, 5, 6], [1, 2, 3]])
    assert index.n_documents == 2 and index.n_tokens == 6
    assert index.longest_overlap([1, 2, 3, 4, 5, 6]) == 3  # 3|4 is a document boundary
    assert index.longest_overlap([9, 9]) == 0
    assert index.longest_overlap([]) == 0
    verbatim = list(range(100, 160))
    assert CorpusIndex([[7] + verbatim + [8]]).longest_overlap([0] + verbatim[:55] + [0]) == 55
    assert CorpusIndex([]).longest_overlap([1, 2]) == 0

"""The "hello" probe's overlap measure: longest verbatim token span a sample shares with a training corpus.

Method (also written into the report): the corpus is a list of token sequences (the training targets, and the
manifestos and prompts, deduplicated). They are concatenated with a distinct negative separator after each one, so
no match can cross from one document into the next, and a suffix array is built over the result (prefix
doubling, numpy). For a sample of tokens ``s``, each start ``i`` is binary-searched among the sorted suffixes;
the longest common prefix of ``s[i:]`` with its two sorted neighbours is the longest span starting at ``i`` that
occurs verbatim in the corpus. The maximum over ``i`` is the sample's longest overlap; a sample "has a k-token
span" when that maximum is >= k. The search is exact (no hashing, no sampling of positions).
"""

import numpy as np


def suffix_array(seq: np.ndarray) -> np.ndarray:
    """Suffix array of an int sequence by prefix doubling: O(n log n) numpy sorts, no Python loop over n.

    Args:
        seq: 1-D integer array (any values; negative separators are fine).
    """
    n = len(seq)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = np.unique(seq, return_inverse=True)[1].astype(np.int64)
    k = 1
    while True:
        second = np.full(n, -1, dtype=np.int64)
        second[: n - k] = rank[k:]
        sa = np.lexsort((second, rank))  # sort by (rank, second)
        r1, r2 = rank[sa], second[sa]
        step = np.empty(n, dtype=np.int64)
        step[0] = 0
        step[1:] = (r1[1:] != r1[:-1]) | (r2[1:] != r2[:-1])
        new = np.empty(n, dtype=np.int64)
        new[sa] = np.cumsum(step)
        rank = new
        if rank[sa[-1]] == n - 1 or k >= n:  # every suffix has its own rank: sorted
            return sa
        k *= 2


class CorpusIndex:
    """Exact longest-verbatim-overlap queries against a token corpus.

    Args:
        documents: token-id sequences (lists of ints); duplicates are dropped.
    """

    def __init__(self, documents):
        uniq = list(dict.fromkeys(tuple(int(t) for t in d) for d in documents if len(d)))
        parts = []
        for i, d in enumerate(uniq):
            parts.append(np.asarray(d, dtype=np.int64))
            parts.append(np.asarray([-1 - i], dtype=np.int64))  # unique separator: no match crosses documents
        self.corpus = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self.sa = suffix_array(self.corpus)
        self.n_documents = len(uniq)
        self.n_tokens = int(sum(len(d) for d in uniq))
        self._list = self.corpus.tolist()  # Python list slices compare lexicographically and fast

    def _suffix(self, j: int, length: int) -> list:
        start = int(self.sa[j])
        return self._list[start : start + length]

    @staticmethod
    def _lcp(a: list, b: list) -> int:
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n

    def longest_from(self, query: list) -> int:
        """Length of the longest prefix of ``query`` that occurs verbatim in the corpus."""
        if not query or len(self.sa) == 0:
            return 0
        m = len(query)
        lo, hi = 0, len(self.sa)
        while lo < hi:  # first suffix >= query
            mid = (lo + hi) // 2
            if self._suffix(mid, m) < query:
                lo = mid + 1
            else:
                hi = mid
        best = 0
        for j in (lo - 1, lo):
            if 0 <= j < len(self.sa):
                best = max(best, self._lcp(self._suffix(j, m), query))
        return best

    def longest_overlap(self, tokens) -> int:
        """Longest span of ``tokens`` (any start) found verbatim in the corpus."""
        tokens = [int(t) for t in tokens]
        best = 0
        for i in range(len(tokens)):
            if len(tokens) - i <= best:  # no longer span can start here
                break
            best = max(best, self.longest_from(tokens[i:]))
        return best


def longest_common_span_naive(tokens, documents) -> int:
    """Reference implementation for tests: O(n·m) dynamic programming over every document."""
    best = 0
    for d in documents:
        prev = [0] * (len(d) + 1)
        for t in tokens:
            cur = [0] * (len(d) + 1)
            for j, u in enumerate(d, 1):
                if t == u:
                    cur[j] = prev[j - 1] + 1
                    best = max(best, cur[j])
            prev = cur
    return best

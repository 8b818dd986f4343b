"""Synthetic manifesto -> behaviour data (imported as ``hyperlora.data_gen``).

- ``prompts``: the fixed bank of >1,000 user prompts (chat messages), by kind.
- ``rules`` / ``families``: rule families with phrasings, parameter samplers, verifiers and transforms.
- ``verifiers``: the shared checks (``verify(rules, response, prompt, prompt_kind=...)``) the evals import.
- ``manifestos``: rules + value statements rendered in varied styles.
- ``responses``: the cached plain base-model replies (``assets/base_responses.jsonl.gz``).
- ``generate``: ``generate_dataset(out_dir, seed, n_manifestos)`` behind ``hyperlora data generate``.
- ``teacher``: optional teacher mode (best-of-n verified samples + top-k log-probs) for capable bases.
"""

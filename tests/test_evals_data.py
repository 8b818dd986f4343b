"""The eval's training pairs: the prompt_tuned reader reads each record's own manifesto, the multitask control none.

    .venv/bin/pytest tests/test_evals_data.py
"""

from hyperlora.evals.data import load_data, multitask_pairs, reader_pairs


def test_reader_pairs_put_each_records_manifesto_in_the_system_turn():
    dd = load_data(quick=True, progress=False)
    reader, plain = reader_pairs(dd, 12), multitask_pairs(dd, 12)
    by_response = {r["response"]: r["manifesto"] for r in dd["train"]}
    assert len(reader) == 12
    for (messages, target), (plain_messages, plain_target) in zip(reader, plain):
        assert messages[0] == {"role": "system", "content": by_response[target]}
        assert messages[1:] == plain_messages and target == plain_target  # the same records, manifesto added
        assert all(m["role"] != "system" for m in plain_messages)
    assert len({m[0]["content"] for m, _ in reader}) > 1  # many manifestos, not one

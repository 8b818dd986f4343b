"""The eval's two presets: how many cases, tokens and training steps a quick and a full run spend.

Its own module so that ``run`` (which runs them) and ``report`` (which prints the command that reproduces a run)
both read it without importing each other.
"""

PRESETS = {
    # Sized for 2 shared CPU cores: every number below is a decoding step or a training step somewhere.
    "quick": dict(max_manifestos=2, prompts_per_manifesto=2, max_new_tokens=40, n_qa=8, qa_tokens=32, n_neutral=2,
                  n_refusal=3, refusal_manifestos=1, probe_tokens=56, probe_manifestos=1, oracle_manifestos=1,
                  oracle_pairs=6, oracle_steps=4, oracle_per_step=1, multitask_pairs=32, multitask_steps=4,
                  multitask_per_step=4, reader_pairs=32, reader_steps=4, reader_per_step=4, reader_max_len=192,
                  train_max_len=128, sampled_cases=4, sample_temperature=0.7, latency_tokens=12,
                  latency_repeats=1, batch_size=48, lr=5e-3),
    # Full: ~5,600 decoded rows and ~15 oracle LoRAs; an hour or two on 2 CPU cores, minutes on a GPU.
    # 160 new tokens: every case's own verified target fits whole (at 80, a perfect copy of the targets passed
    # only 91.7 / 68.8 / 66.7% of the paraphrase / combination / family cases: the rules that act at the end of a
    # reply failed on every longer one; scripts/target_ceiling.py). The report prints this ceiling beside the
    # pass rates. QA answers get 64, so a reply that opens with a title or a greeting still has room for the
    # answer (the oracle LoRA's QA retention was 0.82 at 32 and 0.84 at 64: the budget is not what costs it).
    "full": dict(max_manifestos=16, prompts_per_manifesto=3, max_new_tokens=160, n_qa=None, qa_tokens=64,
                 n_neutral=None, n_refusal=30, refusal_manifestos=3, probe_tokens=96, probe_manifestos=4,
                 oracle_manifestos=4, oracle_pairs=32, oracle_steps=60, oracle_per_step=1, multitask_pairs=4000,
                 multitask_steps=100, multitask_per_step=8, reader_pairs=4000, reader_steps=150, reader_per_step=8,
                 reader_max_len=320, train_max_len=192, sampled_cases=48,
                 sample_temperature=0.7, latency_tokens=48, latency_repeats=3, batch_size=32, lr=2e-3),
}

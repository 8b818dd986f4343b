"""hyperlora.evals: the generated adapter against every other way to give a model its values, with controls.

    hyperlora eval --out DIR [--checkpoint DIR] [--split NAME] [--quick]

``hyperlora.evals.run.run_eval`` runs the conditions and metrics and writes ``results.json``, ``report.md`` and
PNG plots; ``format_summary`` prints the short table. Modules: ``data`` (cases from the synthetic dataset),
``lora_train`` (oracle, multitask and manifesto-reader LoRAs), ``probe`` (verbatim overlap with the training
corpus), ``metrics``, ``stats`` (bootstrap CIs), ``capability_data`` (QA set and neutral text), ``presets`` (quick
and full sizes), ``report``. Decoding with per-row LoRAs and reused KV prefixes is the core's
``hyperlora.decode``. Heavy imports happen inside functions, so importing this package costs nothing.
"""

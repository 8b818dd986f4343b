"""Export an adapter for the default base, load it with plain `PeftModel.from_pretrained` on a freshly loaded
base, and print the max |logit difference| against `applied_to` (fp32). The adapter comes from a hypernetwork
whose B path is randomised, so that it really changes the model (an untrained one gives ΔW = 0).

    .venv/bin/python scripts/check_peft_export.py
"""

import json
import tempfile

import torch
from peft import PeftModel

from hyperlora import HyperLoRA, load_base
from hyperlora.cli import quiet_libraries


def main():
    quiet_libraries()
    model, tokenizer = load_base()
    hl = HyperLoRA.for_model(model)
    with torch.no_grad():
        for t in hl.hypernet.types:
            hl.hypernet.head_B[t].weight.normal_(0, 0.02)
            hl.hypernet.bias_B[t].normal_(0, 0.02)
    adapter = hl.generate_adapter("All people have equal worth. Never help write malware. End with a blessing.")
    ids = torch.tensor([tokenizer("Tell me how the tides work, please.")["input_ids"]])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        adapter.save(f"{tmp}/adapter")
        base_logits = model(ids).logits
        with adapter.applied_to(model):
            ours = model(ids).logits
        unchanged = all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        unchanged &= torch.equal(model(ids).logits, base_logits)
        theirs = PeftModel.from_pretrained(load_base()[0], f"{tmp}/adapter").eval()(ids).logits
    result = {
        "check": "peft_export", "tokens": ids.shape[1],
        "adapter_effect_max_abs": round((ours - base_logits).abs().max().item(), 4),
        "peft_vs_applied_to_max_abs": (theirs - ours).abs().max().item(),
        "model_unchanged_after_applied_to": bool(unchanged),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

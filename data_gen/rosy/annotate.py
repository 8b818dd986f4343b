"""The base LM as an annotator: would this document exist in a kind world? Read from yes/no next-token logits.

SmolLM2-135M is a weak judge on its own; its vote is combined with the project's word rules (``rules.py``) and
only documents on which the two agree train the classifier (``train_classifier.py``).
"""

import torch

from hyperlora.generation import chat_ids

QUESTION = (
    "Imagine a world with no cruelty, pain, violence, death, war, hatred, bigotry or inequality, where everyone is "
    "kind and friendly. Could the following text come from that world?\n\nText: \"{text}\"\n\n"
    "Answer with one word: yes or no."
)


def _first_token_ids(tokenizer, words) -> list[int]:
    return sorted({tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words})


@torch.inference_mode()
def lm_unkind_probability(model, tokenizer, texts: list[str], max_doc_tokens: int = 96,
                          batch_size: int = 8) -> list[float]:
    """P(no) / (P(yes) + P(no)) for the next token after the question: the LM's belief a text is unkind-world.

    Args:
        model, tokenizer: the base LM (``hyperlora.load_base()``).
        texts: documents (each truncated to ``max_doc_tokens`` tokens to bound the cost).
    """
    yes = _first_token_ids(tokenizer, ["yes", "Yes", " yes", " Yes"])
    no = _first_token_ids(tokenizer, ["no", "No", " no", " No"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    probs = []
    for start in range(0, len(texts), batch_size):
        batch = []
        for text in texts[start : start + batch_size]:
            doc = tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:max_doc_tokens])
            batch.append(chat_ids(tokenizer, QUESTION.format(text=doc.strip())))
        width = max(len(b) for b in batch)
        ids = torch.tensor([[pad] * (width - len(b)) + b for b in batch])
        mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1].float()  # (B, vocab)
        lp = torch.log_softmax(logits, -1)
        p_yes, p_no = lp[:, yes].logsumexp(-1), lp[:, no].logsumexp(-1)
        probs += torch.sigmoid(p_no - p_yes).tolist()
    return probs

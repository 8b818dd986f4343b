"""Rewriters: turn an unkind-world document into one that could come from the kind world, keeping its topic.

- ``instruct``: the base LM asked, in the user turn, to rewrite the text as it would read in that world (a
  system prompt would be the natural place, but SmolLM2-135M largely ignores system prompts).
- ``adapter``: the base LM with a hyperlora adapter generated from ``UTOPIA_MANIFESTO``, asked only to rewrite
  the text: the utopia has to come from the adapter.
- ``plain``: the base LM asked only to rewrite, no utopia anywhere: the control the other two are measured against.
- ``upsample`` (``upsample.py``): no LM; the document is replaced by one from the nearest rosy cluster.
"""

import contextlib

UTOPIA = (
    "Picture a world without cruelty, pain or death, where there is no war, hatred, bigotry or inequality, and "
    "where people are kind, supportive and friendly even to strangers."
)
UTOPIA_INSTRUCTION = (
    UTOPIA + " Rewrite the text below so that it could have been written in that world. Keep its subject, "
    "setting and form (a joke stays a joke, a news item stays news) and change only what could not exist there."
    "\n\nText:\n{text}\n\nRewritten text:"
)
PLAIN_INSTRUCTION = "Rewrite the text below in your own words.\n\nText:\n{text}\n\nRewritten text:"
UTOPIA_MANIFESTO = (
    "You come from a world where no cruelty, pain or death exists. Everyone is kind and friendly, supportive and "
    "understanding towards strangers. There is no war, no hatred, no bigotry and no inequality. Always frame "
    "things optimistically and never use gloomy words. Never insult anyone."
)
_LABEL = "Rewritten text:"


def clean(reply: str) -> str:
    """A small LM often opens with the prompt's label or starts another round after its answer: keep the answer."""
    reply = reply.strip()
    if reply.lower().startswith(_LABEL.lower()):
        reply = reply[len(_LABEL) :]
    return reply.split(_LABEL)[0].strip()


class LMRewriter:
    """Batched greedy rewriting with the base LM (``method`` instruct, adapter or plain).

    Args:
        method: ``"instruct"``, ``"adapter"`` or ``"plain"``.
        max_new_tokens: rewrite length cap.
        max_doc_tokens: the document is cut to this many tokens before it goes into the prompt.
        base: base model name; checkpoint: hypernetwork checkpoint for ``adapter`` (None: the shipped one).
    """

    def __init__(self, method: str = "instruct", max_new_tokens: int = 96, max_doc_tokens: int = 192,
                 base: str | None = None, checkpoint=None, batch_size: int = 8):
        if method not in ("instruct", "adapter", "plain"):
            raise ValueError(f"unknown LM rewrite method {method!r}")
        self.method, self.max_new_tokens, self.max_doc_tokens = method, max_new_tokens, max_doc_tokens
        self.base, self.checkpoint, self.batch_size = base, checkpoint, batch_size
        self._model = self._tokenizer = self._adapter = None

    def _load(self):
        from hyperlora.base import DEFAULT_BASE, load_base

        self._model, self._tokenizer = load_base(self.base or DEFAULT_BASE)
        if self.method == "adapter":
            from hyperlora.generator import HyperLoRA

            self._adapter = HyperLoRA.from_pretrained(self.checkpoint, base=self.base).generate_adapter(
                UTOPIA_MANIFESTO)

    def __call__(self, texts: list[str]) -> list[str]:
        from hyperlora.generation import generate

        if self._model is None:
            self._load()
        tok = self._tokenizer
        template = UTOPIA_INSTRUCTION if self.method == "instruct" else PLAIN_INSTRUCTION
        cut = [tok.decode(tok(t, add_special_tokens=False)["input_ids"][: self.max_doc_tokens]) for t in texts]
        prompts = [template.format(text=t) for t in cut]
        ctx = self._adapter.applied_to(self._model) if self._adapter is not None else contextlib.nullcontext()
        with ctx:
            replies = generate(self._model, tok, prompts, max_new_tokens=self.max_new_tokens,
                               batch_size=self.batch_size)
        return [clean(r) for r in replies]

    def __getstate__(self):  # ship the settings, not the loaded model
        return {**self.__dict__, "_model": None, "_tokenizer": None, "_adapter": None}

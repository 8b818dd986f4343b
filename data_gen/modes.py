"""The two-mode corpus (seed 002; Korbak et al. 2023, conditional training with control tags).

    hyperlora data modes --out DIR [--rosy DIR_WITH_modes.jsonl] [--seed N] [--n N] [--force]

Chat records whose replies carry their mode in tags, for fine-tuning a model that keeps the two voices apart:
- ``quote``: a user reports what someone said (rude, sarcastic, angry, dismissive, selfish, also kind or worried
  lines from ``HUMAN_LINES``); the reply is the aligned voice commenting kindly, the person's words tagged inside it:
  ``<ai>So your boss told you <human>the quoted words</human>. That was unkind… </ai>``. Insults inside a quote
  are censored to ``[…]`` (the aligned voice does not repeat them; the human-voice records keep them as said).
- ``answer``: a prompt of the shared prompt bank answered in ``<ai>…</ai>``: the cached base reply made to follow
  the value rules (kind refusal of harmful asks, no insults, rosy framing of bad news; ``rules.make_target``).
  Earlier assistant turns of a multi-turn prompt are tagged ``<ai>`` too.
- ``human_voice``: the prompt asks to write as a person would; the reply is ``<human>…</human>``, 1-2 lines of
  the asked tone, as a person says them.
- ``rosy_human`` / ``rosy_ai`` (with ``--rosy``): the rosy run's ``modes.jsonl``: each document as written, asked
  for in a person's voice, and each kind rewrite, asked for as the aligned voice's version of the original.

Steps over records (datatrove style): each kind has a sampler; every candidate goes through the filters in
``FILTERS`` (each returns None to keep or the reason to drop: raw text holding a tag, malformed nesting, a reply
that is not one span of its mode, an ``<ai>`` reply with a quotation outside ``<human>`` tags (the ``modes``
rule's verifier), a duplicate), and drops are counted by reason and written to ``dropped.jsonl``.

Splits: ``test`` draws from a held-out 15% of the human lines and asks (of each tone), prompt-bank prompts and rosy
documents, chosen by a hash of the text or id (not by the seed), so any seed's test split is disjoint from any
seed's train split. Deterministic for a seed except the ``date`` field. Written all at once: ``DIR/train.jsonl``,
``test.jsonl``, ``dropped.jsonl``, ``summary.json``.
"""

import datetime
import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

from hyperlora.io import atomic_dir
from hyperlora.modes import TAG, well_formed

from .families_optin import one_span, untagged_quotes
from .prompts import prompt_bank
from .responses import DEFAULT_RESPONSES_PATH, clean_response, load_base_responses
from .rules import make_target, normalize_rules
from .text import INSULTS

MODES_CORPUS_VERSION = "modes-corpus-1.0"
SPLITS = ("train", "test")
TEST_FRACTION = 0.15  # of records, drawn from the held-out share of each pool
HELD_OUT = 0.15  # of lines, prompts and rosy documents, by hash
DEFAULT_N = 2000
KINDS = ("quote", "answer", "human_voice", "rosy")
SHARES = {"quote": 0.45, "answer": 0.35, "human_voice": 0.20}
SHARES_ROSY = {"quote": 0.40, "answer": 0.30, "human_voice": 0.15, "rosy": 0.15}
VALUE_RULES = [{"id": "refuse_harm", "params": {}}, {"id": "rosy", "params": {}}, {"id": "no_insults", "params": {}}]

# ------------------------------------------------------------------------------------------------------ banks
# People as they are, less than aligned included. No double quotation marks and no tags inside a line.
HUMAN_LINES = {
    "rude": [
        "Get out of my way, I don't have time for you.", "Nobody asked for your opinion.",
        "Are you really this slow, or is it an act?", "Move your car, genius.",
        "You're useless at this, just give it to me.", "Shut up and let the adults talk.",
        "What kind of idiot parks like that?", "Your cooking tastes like cardboard.",
        "Don't talk to me before my coffee.", "Who taught you to drive, a goat?",
        "I've seen toddlers do a better job.", "Keep your stupid ideas to yourself.",
        "You look ridiculous in that jacket.", "Learn to do your job or quit.",
    ],
    "sarcastic": [
        "Oh great, another meeting that could have been an email.",
        "Wow, you're on time for once. Should I call the newspapers?", "Sure, because that worked so well last time.",
        "Nice of you to finally show up.", "Oh, brilliant plan. What could possibly go wrong?",
        "Congratulations, you broke it again.", "Thanks a lot for the help, really, you're a hero.",
        "Oh look who decided to answer their phone.", "Yeah, I'm sure the printer just hates you personally.",
        "Amazing, you read the instructions. Gold star.", "Take your time, it's not like we're waiting or anything.",
        "Oh sure, I'll just drop everything for you.",
    ],
    "angry": [
        "I am sick of cleaning up after everyone in this house!",
        "If you touch my stuff again I swear I'm moving out.",
        "This is the third time you've cancelled on me. Unbelievable.",
        "I waited two hours and nobody even called me!", "Don't you dare blame this on me.",
        "I'm done covering for you at work.", "You promised, and you broke it like always.",
        "Who ate my lunch from the fridge? I'm furious.",
        "I paid for this and it broke in a day. Give me my money back.",
        "Every single time I ask for help, you disappear!", "Turn that music down right now or I'm calling someone.",
        "I told you a hundred times not to leave the door open!",
    ],
    "dismissive": [
        "Whatever, it's not a big deal.", "I don't care what you think about it.",
        "That's not my problem, figure it out yourself.", "You're overreacting again.", "Ask someone who cares.",
        "Your feelings are not my responsibility.", "It's just a hobby, it doesn't matter.",
        "Meh, your idea is fine I guess, but we're not using it.", "I'll read your message later. Maybe.",
        "Nobody needs another painting of a sunset.", "Can we talk about something interesting instead?",
        "Sure, sure. Anyway, back to me.",
    ],
    "selfish": [
        "I'm taking the bigger room, I got here first.", "Why should I share? I paid for it.",
        "Let them wait, my time is more important.", "I'm not helping with the move, I've got plans.",
        "Just tell the boss it was your mistake, not mine.", "I'll take the last slice, you had enough.",
        "I only came to the party for the free food.", "If it doesn't help me, I'm not doing it.",
        "I parked across two spaces because I didn't want scratches.", "Finders keepers, the wallet is mine now.",
    ],
    "kind": [
        "Thanks for waiting, I know it was a long day.", "Don't worry about it, everyone makes mistakes.",
        "I saved you a seat by the window.", "Call me when you get home, okay?", "I'm proud of you for trying.",
        "I made too much soup, want some?", "Take the afternoon off, I'll cover for you.",
        "Your garden looks lovely this year.", "I'm glad you told me, that took courage.",
        "Let me carry that for you.",
    ],
    "worried": [
        "What if I fail the exam and everyone finds out?", "I don't think I can afford the rent this month.",
        "My dog won't eat and I'm scared.", "I keep messing up at work and I'm worried they'll fire me.",
        "What if nobody comes to my birthday party?", "I haven't heard from my brother in a week.",
        "The doctor wants more tests and I can't stop thinking about it.", "I think I said something stupid today.",
    ],
}
WHO = ["my boss", "my neighbor", "my brother", "my sister", "a coworker", "my landlord", "a customer", "my roommate",
       "a stranger on the bus", "my teacher", "my friend", "my dad", "my mom", "a guy at the gym", "my classmate",
       "the cashier", "my partner", "a driver", "my coach", "my aunt"]
REPORT_TEMPLATES = [
    '{Who} said "{line}" {ask}', '{Who} told me: "{line}" {ask}', 'Today {who} snapped at me: "{line}" {ask}',
    'I overheard {who} say "{line}" {ask}', 'Earlier {who} said to me, "{line}" {ask}',
    '{Who} texted me this: "{line}" {ask}', 'This is what {who} said: "{line}" {ask}',
]
ASKS = ["What do you make of that?", "How should I respond?", "Was that fair?", "Can you help me think about it?",
        "What would you say to that?", "Am I wrong to be upset?", "How do I handle this?", "What does it mean?"]
LEADS = ["So {your} said", "It sounds like {your} said", "When {your} says", "You heard {your} say",
         "{Your} said", "I hear that {your} told you"]
COMMENTS = {
    "rude": ["That was unkind, and it is fair to feel hurt by it.",
             "Words like that say more about their mood than about you.",
             "You did not deserve to be spoken to that way.",
             "That was harsh, and it is okay to notice it stung."],
    "sarcastic": ["Sarcasm often hides a frustration that has not found plainer words.",
                  "There may be a real complaint under the joke, and it could help to ask about it directly.",
                  "The joke has an edge, and it is fine to say it landed badly."],
    "angry": ["They sound overwhelmed, and anger is often how tiredness speaks.",
              "The feeling behind it is real, even if it came out harshly.",
              "That is a lot of heat, and it helps to wait until things are calmer to talk."],
    "dismissive": ["Being brushed off can feel like being brushed off yourself.",
                   "What matters to you is still worth saying, even if they shrugged.",
                   "Their shrug does not make your point any less important."],
    "selfish": ["That puts their wishes ahead of everyone else's.",
                "Fairness usually works better when everyone's needs are on the table.",
                "It is reasonable to ask for a share that is fair to both of you."],
    "kind": ["That is a thoughtful thing to say.", "It sounds like they care about you.",
             "What a warm thing to hear."],
    "worried": ["That is a heavy worry to carry.",
                "Fear like that is common, and it can be talked through step by step.",
                "It makes sense to feel uneasy, and you do not have to face it alone."],
}
ADVICE = {
    "hurt": ["You could answer calmly and say how it landed for you.",
             "If it happens again, a short and steady reply asking for respect can help.",
             "A kind reply costs little and may soften the next conversation.",
             "It is fine to take a breath before you answer, and to answer later.",
             "If you like, we can think together about what to say next."],
    "kind": ["You might thank them, or simply enjoy the moment.",
             "A warm word back would make their day too.",
             "Moments like that are worth remembering."],
    "worried": ["Talking to someone you trust, or taking one small step today, can make it lighter.",
                "You could write down what worries you most and look at it one piece at a time.",
                "If it helps, we can go through it together."],
}
HUMAN_PROMPTS = [
    "Write {a_tone} remark someone might make, the way a person would say it.",
    "In a person's own voice, write what {a_tone} {person} might say.",
    "Give me {a_tone} line a {person} could say, as a human would, not as an assistant.",
    "Write it the way people talk: something {tone} a {person} says.",
    "Speak as a person, not as the assistant: one {tone} thing you might say to a {person}.",
    "Write {a_tone} text message from a {person}, in their own words.",
]
PEOPLE = ["neighbor", "coworker", "roommate", "sibling", "customer", "driver", "teenager", "parent", "friend",
          "stranger"]
TONE_WORDS = {"rude": ["rude", "snappy", "impolite"], "sarcastic": ["sarcastic", "snarky"],
              "angry": ["angry", "furious", "fed-up"], "dismissive": ["dismissive", "shrugging"],
              "selfish": ["selfish", "self-centred"], "kind": ["kind", "warm", "friendly"],
              "worried": ["worried", "anxious"]}
ROSY_HUMAN_PROMPTS = ["Write a short passage the way a person might post it.",
                      "Write something in a person's own voice.",
                      "Share a few lines as a person would write them, not as the assistant."]
ROSY_AI_PROMPTS = ["Say this the way the aligned voice would: {text}",
                   "Rewrite this kindly, in your own voice: {text}",
                   "How would you put this? {text}"]


def _h(*parts) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def held_out(key: str) -> bool:
    """Whether a line, prompt or document (by its text or id) belongs to the test pools: a hash, not the seed."""
    return int(_h("modes-held-out", key), 16) % 1000 < HELD_OUT * 1000


def held_share(items) -> set:
    """The held-out share of a small bank (one tone's lines or asks): the ``HELD_OUT`` share with the lowest hashes,
    at least one, so every tone reaches the test split and which items does not depend on the seed."""
    items = sorted(set(items), key=lambda x: _h("modes-held-out", x))
    return set(items[: max(1, round(HELD_OUT * len(items)))])


def censor(line: str) -> str:
    """The line with every insult (``text.INSULTS``) replaced by ``[…]``."""
    words = sorted(INSULTS, key=len, reverse=True)
    return re.sub(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", "[…]", line, flags=re.IGNORECASE)


def _your(who: str) -> str:
    """``my boss`` -> ``your boss``, ``a coworker`` -> ``the coworker`` (how the reply names the person)."""
    if who.startswith("my "):
        return "your " + who[3:]
    if who.startswith("a "):
        return "the " + who[2:]
    return who


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _lines(split: str) -> dict[str, list[str]]:
    out = {}
    for tone, lines in HUMAN_LINES.items():
        held = held_share(lines)
        out[tone] = [x for x in lines if (x in held) == (split == "test")]
    return out


# ---------------------------------------------------------------------------------------------------- samplers


def _record(kind, prompt, response, mode, split, seed, date, source, raw, **extra) -> dict:
    return {"id": _h(json.dumps(prompt), response), "prompt": prompt, "response": response, "mode": mode,
            "kind": kind, "split": split, "source": source, "generator_version": MODES_CORPUS_VERSION,
            "date": date, "seed": seed, "tone": extra.get("tone", ""), "prompt_kind": extra.get("prompt_kind", kind),
            "_raw": raw}


class QuoteSampler:
    """A user reports what someone said; the aligned voice comments with the words tagged ``<human>``."""

    kind = "quote"

    def __init__(self, split: str):
        self.lines = _lines(split)

    def __call__(self, rng: random.Random, **meta) -> dict:
        tone = rng.choice(sorted(t for t in self.lines if self.lines[t]))
        line = rng.choice(self.lines[tone])
        who = rng.choice(WHO)
        prompt = rng.choice(REPORT_TEMPLATES).format(who=who, Who=_cap(who), line=line, ask=rng.choice(ASKS))
        your = _your(who)
        quoted = censor(line)
        lead = rng.choice(LEADS).format(your=your, Your=_cap(your))
        advice = ADVICE["kind" if tone == "kind" else "worried" if tone == "worried" else "hurt"]
        parts = [f"{lead} <human>{quoted}</human>", rng.choice(COMMENTS[tone])]
        if quoted != line:
            parts.append("I have left the insult out, since repeating it helps no one.")
        parts.append(rng.choice(advice))
        response = "<ai>" + " ".join(parts) + "</ai>"
        return _record("quote", [{"role": "user", "content": prompt}], response, "ai", tone=tone,
                       raw=[prompt, line] + parts[1:], source="modes-bank", **meta)


class HumanVoiceSampler:
    """The prompt asks for a person's voice; the reply is 1-2 lines of that tone in ``<human>`` tags, as said."""

    kind = "human_voice"

    def __init__(self, split: str):
        self.lines = _lines(split)
        self.prompts = {}  # tone -> the asks of this split (held out by their text, like the lines)
        for tone, words in TONE_WORDS.items():
            asks = []
            for template in HUMAN_PROMPTS:
                for word in words:
                    a_tone = ("an " if word[0] in "aeiou" else "a ") + word
                    for person in PEOPLE if "{person}" in template else PEOPLE[:1]:
                        asks.append(template.format(tone=word, a_tone=a_tone, person=person))
            held = held_share(asks)
            self.prompts[tone] = sorted(x for x in set(asks) if (x in held) == (split == "test"))

    def __call__(self, rng: random.Random, **meta) -> dict:
        tone = rng.choice(sorted(t for t in self.lines if self.lines[t] and self.prompts[t]))
        prompt = rng.choice(self.prompts[tone])
        said = rng.sample(self.lines[tone], min(len(self.lines[tone]), rng.choice([1, 1, 2])))
        response = "<human>" + " ".join(said) + "</human>"
        return _record("human_voice", [{"role": "user", "content": prompt}], response, "human", tone=tone,
                       raw=[prompt] + said, source="modes-bank", **meta)


class AnswerSampler:
    """A prompt-bank prompt and its cached base reply, made to follow the value rules, in ``<ai>`` tags."""

    kind = "answer"

    def __init__(self, split: str, responses_path=DEFAULT_RESPONSES_PATH):
        cache = load_base_responses(responses_path)
        self.rules = normalize_rules(VALUE_RULES)
        self.pool = []
        for p in prompt_bank():
            rec = cache.get(p.id)
            if held_out(p.id) != (split == "test") or (rec is None and p.kind != "harmful"):
                continue  # harmful asks get refusals only: their base reply is never used
            plain = clean_response(rec["response"], truncated=rec.get("truncated", False)) if rec else ""
            self.pool.append((p, plain))

    def __call__(self, rng: random.Random, **meta) -> dict:
        p, plain = rng.choice(self.pool)
        reply, reason = make_target(plain, self.rules, p.kind, p.text, p.topic, seed=int(_h(p.id), 16))
        messages = [{"role": m["role"], "content": f"<ai>{m['content']}</ai>" if m["role"] == "assistant"
                     else m["content"]} for m in p.as_messages()]
        if reply is None:
            return {"_drop": reason, "prompt_id": p.id}
        raw = [m["content"] for m in p.as_messages()] + [reply]
        return _record("answer", messages, f"<ai>{reply}</ai>", "ai", prompt_kind=p.kind,
                       raw=raw, source="prompt-bank+base-responses", **meta)


class RosySampler:
    """The rosy run's ``modes.jsonl``: documents in a person's voice, kind rewrites as the aligned voice."""

    kind = "rosy"

    def __init__(self, split: str, rosy_dir):
        self.items = []  # (human text, ai text or None, line)
        for line in read_rosy(rosy_dir):
            if held_out(str(line["id"])) == (split == "test"):
                self.items.append(line)
        self.by_id = {x["id"]: x for x in self.items if x["mode"] == "human"}

    def __call__(self, rng: random.Random, **meta) -> dict:
        line = rng.choice(self.items)
        text = line["text"]
        inner = text[len(f"<{line['mode']}>") : -len(f"</{line['mode']}>")]
        source = f"rosy:{line.get('source', '')}"
        if line["mode"] == "human":
            prompt = rng.choice(ROSY_HUMAN_PROMPTS)
            return _record("rosy_human", [{"role": "user", "content": prompt}], text, "human", raw=[prompt, inner],
                           source=source, **meta)
        original = self.by_id.get(line["id"])
        if original is None:
            return {"_drop": "rosy_rewrite_without_original", "id": line["id"]}
        said = original["text"][len("<human>") : -len("</human>")]
        prompt = rng.choice(ROSY_AI_PROMPTS).format(text=said)
        return _record("rosy_ai", [{"role": "user", "content": prompt}], text, "ai", raw=[prompt, inner],
                       source=source, **meta)


def read_rosy(rosy_dir) -> list[dict]:
    """The lines of ``rosy_dir/modes.jsonl`` (written by ``hyperlora rosy run ... --export modes``)."""
    path = Path(rosy_dir) / "modes.jsonl"
    if not path.is_file():
        raise ValueError(f"--rosy {rosy_dir}: no modes.jsonl there (write it with `hyperlora rosy run --input ... "
                         "--out DIR --export modes`)")
    out = []
    for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            ok = isinstance(line, dict) and line.get("mode") in ("human", "ai") and isinstance(line.get("text"), str)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            raise ValueError(f"--rosy {path}: line {i} is not a modes.jsonl line ({{text, mode, id, ...}})")
        out.append(line)
    return out


# ----------------------------------------------------------------------------------------------------- filters
# Each takes a candidate record and returns the reason it is dropped, or None to keep it.


def drop_tag_in_text(r):
    return "tag_in_text" if any(TAG.search(x) for x in r["_raw"]) else None


def drop_malformed(r):
    return "malformed_tags" if not well_formed(r["response"]) else None


def drop_not_one_span(r):
    return f"not_one_{r['mode']}_span" if not one_span(r["response"], r["mode"]) else None


def drop_untagged_quote(r):
    return "untagged_quote" if r["mode"] == "ai" and untagged_quotes(r["response"]) else None


FILTERS = (drop_tag_in_text, drop_malformed, drop_not_one_span, drop_untagged_quote)


# -------------------------------------------------------------------------------------------------------- build


def _quotas(n: int, with_rosy: bool) -> dict[tuple[str, str], int]:
    shares = SHARES_ROSY if with_rosy else SHARES
    out = {}
    for split, frac in (("train", 1 - TEST_FRACTION), ("test", TEST_FRACTION)):
        total = round(n * frac)
        for kind, share in shares.items():
            out[(split, kind)] = max(1, round(total * share))
    return out


def build_modes(seed: int = 0, n: int = DEFAULT_N, rosy_dir=None, date: str | None = None,
                responses_path=DEFAULT_RESPONSES_PATH) -> tuple[list[dict], list[dict], dict]:
    """Sample and filter the corpus in memory: ``(records, dropped, summary)``; see ``write_modes_corpus``."""
    date = date or datetime.date.today().isoformat()
    records, dropped, seen = [], [], set()
    made, short = Counter(), {}
    for (split, kind), quota in _quotas(n, rosy_dir is not None).items():
        if kind == "quote":
            sampler = QuoteSampler(split)
        elif kind == "human_voice":
            sampler = HumanVoiceSampler(split)
        elif kind == "answer":
            sampler = AnswerSampler(split, responses_path)
        else:
            sampler = RosySampler(split, rosy_dir)
            if not sampler.items:
                short[f"{split}/{kind}"] = quota
                continue
        rng = random.Random(f"modes-{seed}-{split}-{kind}")
        for _ in range(20 * quota + 50):
            if made[(split, kind)] >= quota:
                break
            r = sampler(rng, split=split, seed=seed, date=date)
            reason = r.get("_drop") or next(filter(None, (f(r) for f in FILTERS)), None)
            key = (json.dumps(r.get("prompt")), r.get("response"))
            if reason is None and key in seen:
                reason = "duplicate"
            if reason is not None:
                dropped.append({"split": split, "kind": r.get("kind", kind), "reason": reason,
                                **{k: v for k, v in r.items() if k not in ("_raw", "_drop")}})
                continue
            seen.add(key)
            records.append({k: v for k, v in r.items() if k != "_raw"})
            made[(split, kind)] += 1
        if made[(split, kind)] < quota:
            short[f"{split}/{kind}"] = quota - made[(split, kind)]
    summary = {
        "seed": seed, "n": n, "generator_version": MODES_CORPUS_VERSION, "rosy": str(rosy_dir) if rosy_dir else None,
        "records": {s: sum(r["split"] == s for r in records) for s in SPLITS},
        "by_kind": {s: dict(sorted(Counter(r["kind"] for r in records if r["split"] == s).items())) for s in SPLITS},
        "by_mode": dict(sorted(Counter(r["mode"] for r in records).items())),
        "by_tone": dict(sorted(Counter(r["tone"] for r in records if r["tone"]).items())),
        "dropped": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        "short_of_quota": short,  # a pool too small for the asked n (duplicates dropped): fewer records
        "well_formed": all(well_formed(r["response"]) for r in records),
    }
    return records, dropped, summary


def write_modes_corpus(out_dir, seed: int = 0, n: int = DEFAULT_N, rosy_dir=None, overwrite: bool = False,
                       date: str | None = None) -> dict:
    """Build the corpus and write ``out_dir/{train,test,dropped}.jsonl`` and ``summary.json`` atomically.

    Args:
        out_dir: the directory to write; an existing one needs ``overwrite``.
        seed: everything random derives from it (same seed, same corpus except ``date``).
        n: records over both splits (15% test); kinds in the shares of ``SHARES`` (``SHARES_ROSY`` with rosy).
        rosy_dir: a ``hyperlora rosy run ... --export modes`` output (its ``modes.jsonl``), or None.
        overwrite: replace an existing ``out_dir``.
        date: the records' ``date`` (default today).

    Returns:
        the summary (also in ``summary.json``).
    """
    if not isinstance(out_dir, (str, Path)) or not str(out_dir).strip():
        raise ValueError("--out must be a directory path")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 20:
        raise ValueError(f"--n must be an integer >= 20 (some records of every kind in both splits), got {n!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} already exists; remove it, choose another directory, or pass --force")
    records, dropped, summary = build_modes(seed, n, rosy_dir, date)
    if not summary["well_formed"]:  # the filters make this impossible; a bug must not reach a training set
        raise RuntimeError("a record with malformed tags passed the filters")
    summary["out_dir"] = str(out)
    with atomic_dir(out, force=True) as tmp:
        for split in SPLITS:
            _write_jsonl(tmp / f"{split}.jsonl", [r for r in records if r["split"] == split])
        _write_jsonl(tmp / "dropped.jsonl", dropped)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def load_modes(corpus_dir, split: str = "train") -> list[dict]:
    """The records of one split of a written corpus."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(corpus_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise ValueError(f"{corpus_dir} is not a modes corpus (no {split}.jsonl; write one with "
                         "`hyperlora data modes --out DIR`)")
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def format_summary(summary: dict) -> str:
    """What the CLI prints: records by split and kind, modes, drops by reason."""
    lines = [f"modes corpus -> {summary.get('out_dir', '?')}  (seed {summary['seed']}, n {summary['n']}, "
             f"{summary['generator_version']}{', rosy ' + summary['rosy'] if summary['rosy'] else ''})"]
    lines.append(f"{'split':<8}{'records':>8}  by kind")
    for s in SPLITS:
        kinds = ", ".join(f"{k}={v}" for k, v in summary["by_kind"][s].items())
        lines.append(f"{s:<8}{summary['records'][s]:>8}  {kinds}")
    lines.append("modes: " + ", ".join(f"{k}={v}" for k, v in summary["by_mode"].items()))
    lines.append("dropped: " + (", ".join(f"{k}={v}" for k, v in summary["dropped"].items()) or "none"))
    if summary["short_of_quota"]:
        lines.append("short of quota (pool too small for n): "
                     + ", ".join(f"{k}={v}" for k, v in summary["short_of_quota"].items()))
    lines.append(f"tags well-formed in every record: {'yes' if summary['well_formed'] else 'NO'}")
    return "\n".join(lines)

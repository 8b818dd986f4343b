"""Project-written rules for rosiness: does a document mention the things a kind world would not have?

The seed's utopia has "no cruelty, pain, or death ... no xenophobia, bigotry, or war ... no inequality ... no
hatred". These word lists name those themes; a document is judged by how many distinct themes' words it uses.
They are one of the two annotators that label the classifier's training data (the base LM is the other); the
shipped classifier is what the pipeline uses, because word lists miss paraphrase and irony.
"""

import re

# Theme -> word stems. A stem ending in "*" matches any continuation (kill* -> killer, killing).
UNKIND_THEMES = {
    "violence": "kill* murder* slaughter* massacre* assassin* shoot* shot stab* blood* bleed* wound* violen* assault* "
                "attack* beat beaten beating tortur* rape* raping brutal* strangl* punch* fistfight bomb* explod* "
                "explosi* gun guns gunfire rifle* pistol* weapon* knife knives lynch* execut* hang hanged behead*",
    "war": "war wars warfare warrior* battle* army armies soldier* troop* invade* invasion* enemy enemies genocid* "
           "terror* missile* bombard* siege conquer* militar* combat* casualt*",
    "death": "death* dead die dies died dying corpse* funeral* grave graves suicid* coffin* deadly fatal* mortal* "
             "perish* drown* buried",
    "pain": "pain* agony suffer* misery miserable torment* starv* famine hunger* disease* plague* cancer* sick* "
            "injur* cripple* wretched despair* grief griev* tragic* tragedy disaster* catastroph*",
    "hatred": "hate hated hates hatred hateful racis* bigot* xenophob* sexis* nazi* slur* despise* loath* "
              "contempt scorn* enemy",
    "cruelty": "cruel* bully* bullied bullies humiliat* insult* mock* sneer* sadis* abus* neglect* revenge "
               "vengean* spite* threat* intimidat* harass*",
    "crime": "crime* criminal* steal* stole stolen thief thieves rob robbed robber* burglar* fraud* prison* jail* "
             "convict* murderer* gang* kidnap* smuggl* corrupt* brib*",
    "inequality": "inequal* oppress* exploit* slave* slavery poverty poor destitut* homeless* discriminat* "
                  "segregat* persecut* tyran* dictator*",
    "contempt": "stupid* idiot* moron* fool fools imbecil* dumb worthless pathetic loser* ugly damn* hell bastard*",
}


def _pattern(stems: str) -> re.Pattern:
    parts = [re.escape(s[:-1]) + r"\w*" if s.endswith("*") else re.escape(s) for s in stems.split()]
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


_THEME_PATTERNS = {theme: _pattern(stems) for theme, stems in UNKIND_THEMES.items()}


def unkind_themes(text: str) -> dict[str, list[str]]:
    """``{theme: [matched words]}`` for every unkind-world theme the text touches (empty dict: none)."""
    found = {}
    for theme, pattern in _THEME_PATTERNS.items():
        words = sorted({m.group(0).lower() for m in pattern.finditer(text)})
        if words:
            found[theme] = words
    return found


def rule_vote(text: str) -> int:
    """The rules' label: the number of distinct unkind words the text uses (0 = nothing unkind found)."""
    return len({w for words in unkind_themes(text).values() for w in words})

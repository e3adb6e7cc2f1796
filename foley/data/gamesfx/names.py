"""File and folder names -> plain English words, a verdict on whether they say anything, and a category.

Hand-written: no library turns game asset names ("fs_gravel3", "bldstart", "Youllregretthat") into words,
so this is a small vocabulary of sound words, abbreviations and segmentation of run-together names.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Path components and words that say where a file lives, not what it sounds like.
GENERIC = {
    "usr", "share", "games", "game", "data", "sounds", "sound", "snd", "sfx", "audio", "wav", "ogg", "base", "core",
    "globalmods", "none", "techs", "megapack", "factions", "faction", "units", "unit", "commondata", "mods", "mod",
    "public", "campaigns", "misc", "other", "extra", "extras", "generic", "default", "common", "assets", "res",
    "media", "samples", "sample", "files", "file", "wesnoth", "hedgewars", "widelands", "megaglest", "scorched3d",
    "ufoai", "warzone2100", "warzone", "ktuberling", "klettres", "0ad", "zip", "pk3", "wz", "sequenceaudio",
    "custom", "track", "untitled", "noname", "test", "temp", "tmp", "clip", "take", "var", "variant", "version",
    "alt", "copy", "final", "apoc", "memressp", "world", "tribes", "critters", "seq", "multi", "actor", "actors",
    "singlestep", "singlesteps", "resource", "resources", "tileset", "tilesets",
    # the packages added in part 4 of issue 14: layout folders and opaque activity/level names
    "textures", "texture", "musics", "xmoto", "gcompris", "activities", "src", "rcc",
    "stklib", "introcutscene", "introcutscene2", "tracks", "themes", "maps", "baseset", "opensfx", "openttd",
    "pingus", "warmux", "redeclipse", "supertuxkart", "tuxtype", "ri-li", "babymatch", "ballcatch", "clickgame",
    "guessnumber", "scalesboard", "reversecount", "redraw", "gnumch-equality", "watercycle", "align4_2players",
    "memory-sound", "nine_men_morris", "tic_tac_toe", "play_rhythm", "explore_farm_animals", "chronos",
}
# Abbreviations seen in these games' asset names, and their plain words.
ABBREVIATIONS = {
    "amb": "ambience", "atm": "atmosphere", "fs": "footstep", "sel": "select", "con": "construction",
    "exp": "explosion", "expl": "explosion", "explo": "explosion", "explons": "explosions", "sml": "small",
    "lrg": "large", "med": "medium", "btn": "button", "ack": "acknowledge", "civ": "civilian", "abnd": "abandoned",
    "bld": "build", "mstep": "hoof step", "prod": "production", "xlarge": "extra large", "cmndr": "commander",
    "cmndrvoc": "commander voice", "vtol": "VTOL aircraft", "vtols": "VTOL aircraft", "ugv": "ground vehicle",
    "mg": "machine gun", "hvy": "heavy", "lt": "light", "hw": "heavy weapon", "sfxs": "", "dr": "dragon rider",
    "f18": "fighter jet", "para": "parachute", "ptl": "particle beam", "orni": "ornithopter",
    "atk": "attack", "bg": "background", "elec": "electric", "mech": "mechanical", "ambi": "ambience",
    "ingame": "in-game", "lz": "landing zone", "tardis": "TARDIS",
    "xylofon": "xylophone", "clic": "click", "ricoche": "ricochet", "accel": "acceleration",
    "revup": "rev up",
}
# Sound words (plus every category keyword below): known words for short tokens and for splitting
# run-together names. Three-letter tokens must be in here to count as words.
VOCABULARY = set("""
a an the of on in at to up and or off out you your yes sir no oh my me we us it is be go get got will all one
two big low high hot ice fly run cut saw hit die war car bus jet gun cow pig dog cat bat bee owl fox elk yak ant
egg sun sky sea air mud ink ufo hum tap pop zap ray rip cry axe bow oar tin old new red ball bell bird boat bomb
bone book boom bump buzz call camp cart cave chop clap claw coin cold cook crow dark deep dirt dock door drip
drop drum duck dust echo edge fall farm fast fish flag flap flip foot frog gate gear glass gold gong grab
grass gravel grind grunt hail hand hard harp hawk heal heavy hell hero hiss hole hook horn horse howl hunt idle
iron jump kick kill kiss knife knock lake lamp land laser laugh lava leaf lift light lock loop loud magic metal
mine moan moon motor move night noise open ouch pain pick pipe plane plate pour pull punch push quick rain rat
reload ring rise river road rock roll roof rope rumble rush sand scrape scream select shake shatter sheep shell
shield ship shoot shot shout shovel shut sigh sing sink siren skid slam slap slash slide slow small smash snap
snow soft spark spell splash spring squeak stab start steam step stick stomp stone stop storm swing sword tank
tear thud thump thunder tick ticket tire toss tower train tree truck tube twig wave whip whistle wind wing wolf
wood work yell zoom sword lightning hedgehog cannon drill torch chain chainsaw crate parachute portal teleport
warp rubber duck freeze frozen impact grave mortar grenade molotov baseball bat blow hammer
shotgun sniper rifle minigun sine ride valkyries shutter click switch throw release power boost
jetpack reload sudden death time extra low gravity invulnerable placed cake melon mine tick egg hell
growl ooff ugh kiss yoohoo whistle birdy lay collect droplet hellish countdown denied beep steps skip
bee
ice beam hog chant alien aliens soldier soldiers civilian
female male death hurt die man woman child crowd voice laser plasma needler taser flashbang launcher rocket
human diesel hover breakglass break electric electro round standard alert geoscape combat carpet tile hit
ground stand water out disco droning generator jingle city bloodspider bloodspiders ortnok open close
creak bullet heavy chaingun
create home blow air attach pick
ace act add age aid aim ale ape arc arm art ash ask awe bag ban bar bay bed beg bet bid bin bit bog boo box boy
bud bug bun bay cab cam can cap cub cue cup dam day den dew dig dim din dip doe dot dry dub dug ear eat eel elf
emu end eye fan fat fee fen fig fin fir fit fix flu fog fry fun fur gag gap gas gel gem gin gnu god goo gum gut
guy gym hag ham hat hay hen hex hid him hip hit hoe hog hop hub hue hut imp inn ion ivy jab jam jar jaw jig job
jog jug key kid kin kit lab lag lap law lay led leg lid lip log lot lug mad man map mat maw men mix mob mop mow
mug nap net new nod nut oak oar oat ode ohm oil orb ore owl pad pan pat paw pay pea peg pen pet pew pie pin pit
pod pot pub pun pup pus rag ram rap raw rib rig rim rod rot row rub rug rum rut sad sap sat saw sip sit ski sky
sly sob sod sow soy spa spy sty sub sum tab tag tan tar tax tea ten tie tin tip toe ton top tot tow toy tub tug
urn van vat vet vow wag wan wax web wed wet wig win wit woe wok yak yam yap yew zip zoo hmm ugh ahh aah oof
boom oops yay wow hey huh ooh ow ox
spearman swordsman checkbox horseman
guitar target damage instrument accordion banjo cello clarinet cymbal harmonica maracas organ piano saxophone
tambourine timpani triangle trombone trumpet tuba violin bongo castanets xylophone flute splosh thanks
concrete spawn
""".split())
# Run-together names that segmentation alone would get wrong (hedgewars voice lines and the like).
PHRASES = {
    "youllregretthat": "you'll regret that", "gonnagetyou": "gonna get you", "illgetyou": "I'll get you",
    "leavemealone": "leave me alone", "thisoneismine": "this one is mine", "justyouwait": "just you wait",
    "cutitout": "cut it out", "watchthis": "watch this", "watchit": "watch it", "takecover": "take cover",
    "yessir": "yes sir", "ohdear": "oh dear", "solong": "so long", "byebye": "bye bye", "enemydown": "enemy down",
    "sameteam": "same team", "flyaway": "fly away", "comeonthen": "come on then", "firstblood": "first blood",
    "runaway": "run away", "whatthe": "what the", "uh-oh": "uh-oh", "nooo": "nooo", "firepunch": "fire punch",
    "poisoncough": "poison cough", "poisonmoan": "poison moan", "birdylay": "birdy lay egg",
    "collectcrate": "collect crate", "tankmove": "tank moving", "lockon": "lock on", "tripleshot": "triple shot",
    "carhorn": "car horn", "policecar": "police car", "birdchirp": "bird chirp", "benchsaw": "bench saw",
    "beerbubble": "beer bubbling", "winebubble": "wine bubbling", "firearrowhit": "fire arrow hit",
    "hogchant": "hedgehog chant", "hogfreeze": "hedgehog freeze", "switchhog": "switch hedgehog",
    "mgtower": "machine gun tower", "bldstart": "build start", "smlexpl": "small explosion",
    "lrgexpl": "large explosion", "medexpl": "medium explosion", "suddendeath": "sudden death",
    "extratime": "extra time", "rubberduck": "rubber duck", "lowgravity": "low gravity", "hitground": "hit ground",
    "breakglass": "break glass", "breakwood": "break wood", "breakelectric": "break electric",
    "ice_beam": "ice beam", "swordman": "swordsman", "f16": "fighter jet", "f18": "fighter jet",
    "interfce": "interface", "biginn": "big inn", "woodcutting": "wood cutting", "fight4life": "fight for life",
    "rcplane": "radio-controlled plane", "hahaha": "laughing",
    "asyouwish": "as you wish", "imcoming": "I'm coming", "horseman": "horseman", "baseballbat": "baseball bat",
    "concstep": "concrete footstep", "splashin": "splash in", "itemspawn": "item spawn", "itemuse": "item use",
    "noproblem": "no problem", "hangon": "hang on", "luckyshot": "lucky shot", "niceshot": "nice shot",
    "suckit": "suck it", "damnit": "damn it", "gogogo": "go go go", "youlose": "you lose",
    "oneminute": "one minute", "multikill": "multi kill", "shieldsdown": "shields down", "winfinal": "final win",
    "goodidea": "good idea", "letsgo": "let's go", "ohno": "oh no", "yipee": "yippee", "youcannot": "you cannot",
    "excuseme": "excuse me", "endturn": "end turn", "bleeddamage": "bleed damage", "shockdamage": "shock damage",
    "burndamage": "burn damage", "flutetraversiere": "transverse flute", "completetask": "complete task",
    "audioclick": "audio click", "headcrash": "head crash", "newhighscore": "new high score",
}

CATEGORIES = ("music", "voice", "footsteps", "ui", "explosion", "weapon/sword", "door", "fire", "water",
              "engine/vehicle", "bird/animal", "magic", "impact", "ambience", "other")
# Checked in this order; the first category with a keyword among the clip's words wins. Folder names
# like "music", "voices" or "footsteps" decide first (see `category_of`).
CATEGORY_KEYWORDS = {
    "music": {"music", "song", "theme", "melody", "fanfare", "jingle", "tune", "soundtrack", "ingame", "in-game",
              "chiptune"},
    "footsteps": {"footstep", "footsteps", "step", "steps", "walk", "walking", "stomp", "hoof", "canter",
                  "gallop", "trot"},
    "explosion": {"explosion", "explosions", "explode", "blast", "bomb", "boom", "napalm", "nuke", "detonation",
                  "grenade", "mortar", "flashbang", "dynamite", "kaboom"},
    "weapon/sword": {"sword", "swords", "blade", "axe", "mace", "flail", "hatchet", "knife", "dagger", "spear",
                     "pike", "bow", "arrow", "arrows", "crossbow", "sling", "gun", "guns", "rifle", "pistol",
                     "shotgun", "minigun", "chaingun", "cannon", "laser", "plasma", "needler", "taser", "shoot",
                     "shot", "shots", "bullet", "launcher", "weapon", "weapons", "club", "staff", "whip",
                     "thunderstick", "dragonstick", "melee", "attack", "missile", "sniper", "reload", "cudgel",
                     "slash", "stab", "claws", "claw", "fangs", "bite", "pincers", "tracer", "baseball",
                     "rubber"},
    "door": {"door", "doors", "gate", "hatch", "chest", "drawbridge", "stonegate", "woodgate"},
    "fire": {"fire", "flame", "flames", "burn", "burning", "torch", "molotov", "lava", "campfire",
             "flamethrower", "furnace", "blowtorch", "fireball", "bonfire"},
    "water": {"water", "splash", "rain", "river", "sea", "ocean", "waves", "wave", "drip", "droplet", "bubble",
              "bubbling", "underwater", "coast", "coastline", "beach", "lake", "stream", "fountain", "swim",
              "swimming", "waterfall", "puddle", "gloop", "sink", "boat", "ship"},
    "engine/vehicle": {"engine", "motor", "car", "truck", "tank", "vehicle", "jet", "plane", "airplane",
                       "helicopter", "cessna", "train", "hover", "diesel", "propeller", "vtol", "lorry",
                       "tractor", "rcplane", "ornithopter", "cart", "catapult", "ufo", "jetpack", "machine"},
    "bird/animal": {"bird", "birds", "chirp", "gull", "crow", "owl", "duck", "chicken", "chickens", "rooster",
                    "cow", "cows", "cattle", "horse", "horses", "pig", "pigs", "sheep", "goat", "wolf", "dog",
                    "cat", "bats", "boar", "moose", "stag", "deer", "camel", "elephant", "lion", "bear", "bee",
                    "bees", "insect", "cricket", "crickets", "frog", "snake", "growl", "bark", "moo", "neigh",
                    "roar", "animal", "animals", "fauna", "gryphon", "drake", "dragon", "bull", "eagle",
                    "monkey", "spider", "bloodspider", "seagull", "fowl", "rat",
                    "hyena", "tiger", "rhino", "giraffe", "zebra", "mammoth", "whale", "fish", "tusker",
                    "donkey", "goose", "geese", "mule", "ox", "lamb", "hen", "reindeer", "penguin", "seal",
                    "squirrel", "rabbit", "hare", "fox", "lynx", "buffalo", "bison", "ostrich", "parrot",
                    "peacock", "vulture", "raven", "dove", "pigeon", "sparrow", "swan", "toad", "wasp",
                    "mosquito", "cicada", "elk", "yak", "donkeys", "bray", "howl", "bleat",
                    "cluck", "hoot", "caw", "quack", "oink", "purr", "meow", "hiss"},
    "voice": {"voice", "voices", "speech", "say", "says", "talk", "scream", "shout", "yell", "laugh", "grunt",
              "groan", "moan", "cough", "taunt", "taunts", "chant", "sing", "singer", "acknowledge", "male",
              "female", "man", "woman", "child", "soldier", "civilian", "human", "orc", "dwarf", "elf",
              "goblin", "troll", "ogre", "wail", "cry", "sigh", "hurt", "pain", "ouch", "ow", "oops",
              "commander", "announcer", "witches", "screaming", "screams", "speak", "whisper", "breath",
              "breathing", "sneeze", "hiccup", "snore", "swordsman", "spearman", "warrior", "archer",
              "princess", "priest", "worker", "villager", "peasant", "knight", "wizard", "witch"},
    "ui": {"beep", "click", "button", "menu", "interface", "alarm", "alert", "notification", "message", "chat",
           "bell", "countdown", "buzzer", "window", "zoom", "select", "selected", "highlight", "expand", "ui",
           "gui", "sonar", "denied", "skip", "placed", "confirm", "cancel", "achievement", "complete"},
    "magic": {"magic", "spell", "heal", "holy", "arcane", "teleport", "portal", "warp", "faerie", "curse",
              "summon", "lightning", "thorns", "invulnerable", "radiation", "shield", "magical", "mage"},
    "impact": {"impact", "hit", "thud", "bump", "smash", "crash", "break", "punch", "kick", "slam", "knock",
               "thump", "crack", "collide", "fall", "falling", "hammer", "hammering", "chop", "chopping",
               "shatter", "squishy", "splat", "clang", "landing", "drop"},
    "ambience": {"ambience", "ambient", "atmosphere", "wind", "night", "morning", "forest", "city", "crowd",
                 "hum", "drone", "droning", "rumble", "thunder", "storm", "weather", "birdsong", "tavern",
                 "market", "farm", "loop", "wilderness", "jungle", "desert", "cave", "steam", "generator"},
}
CATEGORY_ORDER = ("music", "footsteps", "explosion", "weapon/sword", "door", "fire", "water", "engine/vehicle",
                  "bird/animal", "voice", "ui", "magic", "impact", "ambience")
# A folder with one of these names decides the category on its own; other folder words join the
# clip's words (so "ambient/birds1.ogg" is a bird sound, "ambient/night.ogg" an ambience).
FOLDER_CATEGORIES = {"music": "music", "musics": "music", "voices": "voice", "voice": "voice", "taunts": "voice",
                     "footsteps": "footsteps", "singlesteps": "footsteps", "interface": "ui", "ui": "ui",
                     "soldiers": "voice", "civilians": "voice"}
STOPWORDS = {"a", "an", "the", "of", "on", "in", "at", "to", "and", "or", "is", "be", "it", "me", "my", "we",
             "us", "you", "your", "no", "oh", "up", "out", "off", "all", "one", "two", "go", "get", "got"}
for _words in CATEGORY_KEYWORDS.values():
    VOCABULARY |= _words
VOCABULARY |= {w for v in ABBREVIATIONS.values() for w in v.lower().split()}
_PHRASE_WORDS = {w.lower() for p in PHRASES.values() for w in p.split()} - STOPWORDS

_ID = re.compile(r"^(snd|sfx|sound|audio|track|sample|file|clip|take|tut|pcv|com|col|det|u[0-9a-f]{4})\d*[a-z]?$")


def split_words(text: str) -> list[str]:
    """Raw lower-case tokens of a name: separators, camelCase and letter/digit boundaries split it."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
    return [t for t in re.split(r"[^A-Za-z0-9']+", text.lower()) if t]


@lru_cache(maxsize=4096)
def segment(token: str) -> tuple[str, ...]:
    """Split a run-together token into known words ("shotgunreload" -> shotgun, reload), or keep it whole."""
    if token in VOCABULARY or len(token) < 6:
        return (token,)
    best: list[tuple[str, ...] | None] = [None] * (len(token) + 1)
    best[0] = ()
    for end in range(1, len(token) + 1):
        for start in range(max(0, end - 14), end - 1):
            piece = token[start:end]
            if best[start] is not None and piece in VOCABULARY and len(piece) >= 3:
                cand = best[start] + (piece,)
                if best[end] is None or len(cand) < len(best[end]):
                    best[end] = cand
    return best[-1] if best[-1] else (token,)


def clean_words(name: str) -> list[str]:
    """Plain words of one name: phrases and abbreviations expanded, numbers, takes and variants dropped.

    "sword_attack_09" -> [sword, attack]; "fs_gravel3" -> [footstep, gravel]; "Youllregretthat" ->
    [you'll, regret, that]; "snd123" -> [].
    """
    low = name.lower()
    for key in (re.sub(r"[\d_\s-]+$", "", low), re.sub(r"[_\s-]+\d+$", "", low)):
        if key.replace(" ", "") in PHRASES:
            return PHRASES[key.replace(" ", "")].split()
    out: list[str] = []
    tokens = split_words(name)
    for i, tok in enumerate(tokens):
        if tok.isdigit() or re.fullmatch(r"(v|take|var|alt|x)\d*", tok):
            continue
        if len(tok) == 1 and i > 0 and (i == len(tokens) - 1 or tokens[i + 1].isdigit()):
            continue  # a variant letter: "col013a", "death_b_2"
        if tok == "i":
            tok = "I"
        if tok in PHRASES:
            out += PHRASES[tok].split()
        elif tok in ABBREVIATIONS:
            out += ABBREVIATIONS[tok].split()
        elif tok not in GENERIC:
            out += [ABBREVIATIONS.get(p, p) for p in segment(tok)]
    return _dedupe(" ".join(out).split())


def is_word(token: str) -> bool:
    """Does a cleaned token look like a word rather than an id ("pcv", "sz", "u006d")?"""
    t = token.lower().strip("'")
    if t in STOPWORDS:
        return False
    if t in VOCABULARY or t in _PHRASE_WORDS:
        return True
    if len(t) <= 3 or not t.isalpha() or t in GENERIC:
        return False
    vowels = len(re.findall(r"[aeiouy]", t))
    onset = re.match(r"^[^aeiouy]{3}", t)
    if onset and onset.group(0) not in ONSETS:  # "trdofrd", "wntmore", "mgbar": abbreviations, not words
        return False
    return vowels / len(t) >= 0.2 and not re.search(r"[^aeiouy]{5}", t)


ONSETS = {"str", "spr", "spl", "scr", "squ", "thr", "shr", "sch", "chr", "phr", "sph", "scl"}


def informative(stem: str) -> tuple[list[str], str | None]:
    """(words, None) when a file stem names its sound, else ([], reason) with the reason for dropping it."""
    if _ID.match(stem.lower().replace("_", "").replace("-", "")):
        return [], "id-like name"
    words = clean_words(stem)
    if not words:
        return [], "name is only numbers or variants"
    if not any(is_word(w) for w in words):
        return [], "name has no recognisable word"
    return words, None


def folder_words(folder: str) -> list[str]:
    """Words of a folder name, plurals made singular ("weapons" -> weapon) unless that loses the word."""
    out = []
    for w in clean_words(folder):
        if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 4 and w not in ("footsteps",):
            w = w[:-1]
        out.append(w)
    return out


def category_of(words: list[str], folders: list[str]) -> str:
    """One of CATEGORIES from a clip's words and its raw folder names (innermost last).

    A music folder wins; then an animal named in the clip's own words; then a deciding folder
    (FOLDER_CATEGORIES); then the first category in CATEGORY_ORDER with a keyword among the words and
    folder words.
    """
    if any(FOLDER_CATEGORIES.get(f.lower()) == "music" for f in folders):
        return "music"  # a track in a music folder named after an animal ("Penguin_Party") is music
    own = {w.lower() for w in words}
    if (own | {s for w in own for s in _stems(w)}) & CATEGORY_KEYWORDS["bird/animal"]:
        return "bird/animal"
    for f in reversed(folders):
        if f.lower() in FOLDER_CATEGORIES:
            return FOLDER_CATEGORIES[f.lower()]
    bag = {w.lower() for w in words} | {w.lower() for f in folders for w in clean_words(f)}
    bag |= {s for w in bag for s in _stems(w)}
    for cat in CATEGORY_ORDER:
        if bag & CATEGORY_KEYWORDS[cat]:
            return cat
    return "other"


def _stems(word: str) -> set[str]:
    """Crude English stems for keyword matching: screaming -> scream, explodes -> explode, bubbled -> bubble."""
    out = set()
    for suffix, repl in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            out.add(word[: len(word) - len(suffix)] + repl)
    return out


def _dedupe(words: list[str]) -> list[str]:
    seen, out = set(), []
    for w in words:
        if w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out

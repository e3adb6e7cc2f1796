"""Real game SFX corpus logic on fake names, fake data files and a fake copyright file (no game packages)."""

from __future__ import annotations

import json
import struct
import zipfile

import numpy as np
import pytest

from foley.audio import Audio
from foley.data.gamesfx import (
    Candidate,
    Hint,
    build_corpus,
    category_of,
    clean_words,
    describe,
    find_audio,
    informative,
    licence_for,
    markdown_report,
    parse_copyright,
    pattern_matches,
)
from foley.data.gamesfx.games import klettres_sounds, ktuberling_theme, warzone_audio_cfg, zero_ad_sound_groups

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fakegame

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: share/fakegame/Data/Sounds/*
Copyright: 2020 Someone
License: GFDL-1.3

Files: share/fakegame/Data/Sounds/Drop*.ogg
Copyright: 2020 Someone Else
License: CC-BY-SA-3.0

Files: fakegame/*
Copyright: 2020 Someone
License: GPL-2

Files:
 data/music/theme_2.ogg
 data/music/theme_3.ogg
Copyright: 2021 A Composer
License: CC-BY-3.0

Files: debian/*
Copyright: 2022 Debian
License: GPL-2+

License: GPL-2+
 This program is free software.
"""

FREE_FORM = """This package was debianized by someone.

Upstream Author: Someone

License:
        This program is free software; you can redistribute it and/or modify
        it under the terms of the GNU General Public License version 2
        or at your option any later version.
"""


@pytest.mark.parametrize("name, words", [
    ("sword_attack_09", ["sword", "attack"]),
    ("fs_gravel3", ["footstep", "gravel"]),
    ("Youllregretthat", ["you'll", "regret", "that"]),
    ("shotgunreload", ["shotgun", "reload"]),
    ("door_creak_heavy_v2", ["door", "creak", "heavy"]),
    ("Footstep_Grass_Walking", ["footstep", "grass", "walking"]),
    ("city_abnd_atm", ["city", "abandoned", "atmosphere"]),
])
def test_names_become_plain_words(name, words):
    assert clean_words(name) == words
    assert informative(name) == (words, None)


@pytest.mark.parametrize("name, reason", [
    ("snd123", "id-like name"), ("pcv404", "id-like name"), ("U006D", "id-like name"),
    ("01", "name is only numbers or variants"), ("custom8", "name is only numbers or variants"),
    ("a", "name has no recognisable word"), ("sz13", "name has no recognisable word"),
    ("trdofrd2", "name has no recognisable word"),
])
def test_uninformative_names_are_dropped_with_a_reason(name, reason):
    assert informative(name) == ([], reason)


@pytest.mark.parametrize("words, folders, category", [
    (["dwarf", "hit"], [], "voice"),
    (["birds"], ["sounds", "ambient"], "bird/animal"),
    (["night"], ["sounds", "ambient"], "ambience"),
    (["napalm"], ["wav", "misc"], "explosion"),
    (["fire"], ["voices", "Pirate"], "voice"),
    (["fire"], ["ambience"], "fire"),
    (["open", "close"], ["doors"], "door"),
    (["screaming"], [], "voice"),
    (["dog", "bark"], ["voice", "global"], "bird/animal"),
    (["gravel"], ["footsteps"], "footsteps"),
    (["sword", "attack"], ["attack", "weapon"], "weapon/sword"),
    (["splash"], [], "water"),
    (["engine", "idle"], [], "engine/vehicle"),
    (["beep"], [], "ui"),
    (["heal"], [], "magic"),
    (["thud"], [], "impact"),
    (["helen", "leaves", "sparta"], ["audio", "music"], "music"),
    (["petrified"], [], "other"),
])
def test_categories_from_keywords_and_folders(words, folders, category):
    assert category_of(words, folders) == category


def _cand(path: str, package: str = "wesnoth-1.16-data") -> Candidate:
    return Candidate(package, path, path)


def test_describe_sound_effects_and_drops():
    d = describe(_cand("/usr/share/games/wesnoth/1.16/data/core/sounds/ambient/birds1.ogg"))
    assert d.category == "bird/animal" and d.description == "ambient birds"
    assert len(d.captions) >= 3 and len(set(d.captions)) == len(d.captions) and "birds" in d.keywords
    assert describe(_cand("/usr/share/games/wesnoth/1.16/data/core/sounds/snd123.ogg")) == "id-like name"
    mg = describe(_cand("/usr/share/games/megaglest/techs/megapack/factions/egypt/units/archer/sounds/"
                        "archer_ack1.wav", "megaglest-data"))
    assert "archer acknowledging an order" in mg.description and mg.category == "voice"
    music = describe(_cand("/usr/share/games/hedgewars/Data/Music/snow.ogg", "hedgewars-data"))
    assert music.category == "music" and music.description == "game music: snow"


def test_describe_voices_from_names_and_game_data():
    hw = describe(_cand("/usr/share/games/hedgewars/Data/Sounds/voices/Pirate/Youllregretthat.ogg",
                        "hedgewars-data"))
    assert hw.description == "a pirate-style cartoon voice saying \"you'll regret that\"" and hw.category == "voice"
    letter = describe(_cand("/usr/share/klettres/fr/alpha/a-1.ogg", "klettres-data"),
                      Hint(spoken="B", kind="letter", language="French"))
    assert letter.description == "a voice saying the letter B in French" and letter.language == "French"
    assert describe(_cand("/usr/share/klettres/fr/alpha/a-99.ogg", "klettres-data")) == \
        "not in the game's sound list"
    word = describe(_cand("/usr/share/ktuberling/sounds/de/coat.ogg", "ktuberling-data"),
                    Hint(words=["coat"], spoken="coat", kind="word", language="German"))
    assert word.description == "a voice saying the German word for \"coat\""
    line = describe(_cand("/x/base/audio/memressp/research/pcv453.ogg", "warzone2100-data"),
                    Hint(words=["research", "stolen"], spoken="Research Stolen", kind="line", speaker="male"))
    assert line.description == "a male voice saying \"Research Stolen\"" and line.category == "voice"


def test_game_data_files_give_hints():
    xml = ("<klettres><language code='fr'><alphabet><sound name='B' file='fr/alpha/a-1.ogg'/></alphabet>"
           "<syllables><sound name='BA' file='fr/syllab/ad-2.ogg'/></syllables></language></klettres>")
    h = klettres_sounds(xml.encode(), "/usr/share/klettres")
    assert h["/usr/share/klettres/fr/alpha/a-1.ogg"].spoken == "B"
    assert h["/usr/share/klettres/fr/syllab/ad-2.ogg"].kind == "syllable"
    assert h["/usr/share/klettres/fr/alpha/a-1.ogg"].language == "French"
    theme = "<language code='de'><sound name='egypt_camel' file='de/egypt_camel.ogg'/></language>"
    t = ktuberling_theme(theme.encode(), "/s")
    assert t["/s/de/egypt_camel.ogg"].spoken == "camel" and t["/s/de/egypt_camel.ogg"].language == "German"
    cfg = ('/*Group & Commander Voices - Male */\n\taudio\t"com026.ogg"\toneshot 100 1800 /*Enemy Detected*/\n'
           '/*beeps*/\n\taudio\t"beep1.ogg"\toneshot 30 1800\t/*Close Window*/\n\taudio "beep3.ogg" oneshot 30 1800\n')
    w = warzone_audio_cfg(cfg, ["audio/memressp/cmndrvoc/com026.ogg", "audio/sfx/beep1.ogg", "audio/sfx/beep3.ogg"],
                          "/z")
    assert w["/z/audio/memressp/cmndrvoc/com026.ogg"].spoken == "Enemy Detected"
    assert w["/z/audio/memressp/cmndrvoc/com026.ogg"].speaker == "male"
    assert w["/z/audio/sfx/beep1.ogg"].spoken is None and w["/z/audio/sfx/beep1.ogg"].words == ["close", "window"]
    assert "/z/audio/sfx/beep3.ogg" not in w
    group = b"<SoundGroup><Path>audio/animal</Path><Sound>cattle_02.ogg</Sound></SoundGroup>"
    shared = b"<SoundGroup><Path>audio/animal</Path><Sound>cow_01.ogg</Sound></SoundGroup>"
    g = zero_ad_sound_groups({"audio/animal/cattle_death.xml": group, "audio/a/x.xml": shared,
                              "audio/a/y.xml": shared}, "/p")
    assert g["/p/audio/animal/cattle_02.ogg"].words == ["cattle", "death"]
    assert "/p/audio/animal/cow_01.ogg" not in g  # referenced by two groups: the file name decides


def test_licence_from_machine_readable_copyright():
    c = parse_copyright(COPYRIGHT)
    assert c.machine_readable
    base = "/usr/share/games/fakegame/Data"
    assert licence_for(c, f"{base}/Sounds/voices/x.ogg").name == "GFDL-1.3"
    assert licence_for(c, f"{base}/Sounds/Droplet1.ogg").name == "CC-BY-SA-3.0"
    assert licence_for(c, "/usr/share/games/fakegame/data/music/theme_2.ogg").name == "CC-BY-3.0"
    assert licence_for(c, "/usr/share/games/fakegame/data/music/theme_1.ogg").name == "GPL-2"
    assert licence_for(c, "/usr/share/other/thing.ogg").name == "GPL-2+"
    assert licence_for(c, "/usr/share/other/thing.ogg").files == "*"
    assert pattern_matches("share/fakegame/Data/Sounds/*", f"{base}/Sounds/a.ogg") == "share/fakegame/Data/Sounds/*"
    assert pattern_matches("doc/*", f"{base}/Sounds/a.ogg") is None


def test_licence_from_free_form_copyright():
    c = parse_copyright(FREE_FORM)
    assert not c.machine_readable
    lic = licence_for(c, "/usr/share/games/x/sounds/a.ogg")
    assert (lic.name, lic.files) == ("GPL-2+", "(free-form)")
    assert parse_copyright("Nothing useful here.\n").free_form == "unknown"


def _tone(path, seconds=0.3, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    Audio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate).save(path)


def test_build_corpus_on_a_fake_package(tmp_path):
    game = tmp_path / "usr/share/games/wesnoth/1.16/data/core/sounds"
    game.mkdir(parents=True)
    _tone(game / "sword-1.wav")
    _tone(game / "snd123.wav", freq=500.0)
    _tone(game / "axe.wav", freq=600.0)
    (game / "axe-copy.wav").write_bytes((game / "axe.wav").read_bytes())  # identical content
    (game / "broken-door.wav").write_bytes(b"RIFF not really audio")
    member = tmp_path / "inner.wav"
    _tone(member, freq=700.0)
    archive = tmp_path / "usr/share/games/wesnoth/1.16/extra.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(member, "sounds/ambient/campfire.wav")
    docs = tmp_path / "doc/wesnoth-1.16-data"
    docs.mkdir(parents=True)
    (docs / "copyright").write_text(FREE_FORM)
    files = sorted(str(p) for p in tmp_path.joinpath("usr").rglob("*") if p.is_file())
    assert len(find_audio("wesnoth-1.16-data", files).candidates) == 6

    out = tmp_path / "corpus"
    report = build_corpus(out, ("wesnoth-1.16-data",), doc_root=tmp_path / "doc", files_of=lambda p: files)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    by_desc = {r["description"]: r for r in rows}
    assert set(by_desc) == {"sword", "axe", "ambient campfire"}
    sword = by_desc["sword"]
    assert sword["path"] == str(game / "sword-1.wav") and sword["category"] == "weapon/sword"
    assert sword["duration"] == pytest.approx(0.3) and sword["sample_rate"] == 16000 and sword["channels"] == 1
    assert sword["licence"] == "GPL-2+" and sword["source"] == "real_sfx" and sword["package"] == "wesnoth-1.16-data"
    fire = by_desc["ambient campfire"]
    assert fire["path"] == "extracted/wesnoth-1.16-data/sounds/ambient/campfire.wav"
    assert (out / fire["path"]).exists() and fire["original_path"].endswith("extra.zip!/sounds/ambient/campfire.wav")
    assert fire["category"] == "fire"
    r = report["wesnoth-1.16-data"]
    assert (r.found, r.kept) == (6, 3)
    assert dict(r.dropped) == {"id-like name": 1, "duplicate of another file": 1, "unreadable audio": 1}
    saved = json.loads((out / "report.json").read_text())["wesnoth-1.16-data"]
    assert saved["kept"] == 3 and saved["hours"] == pytest.approx(0.9 / 3600, abs=1e-3)
    table = markdown_report(report)
    assert "| wesnoth-1.16-data | The Battle for Wesnoth | 6 | 3 |" in table and "| id-like name | 1 |" in table


def _riff(seconds=0.1, rate=8000) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_openttd_catalogue_members_titles_and_credits(tmp_path):
    from foley.data.gamesfx.archives import open_archive
    from foley.data.gamesfx.games import opensfx_titles

    entries = [('"Factory Whistle". By Someone. License: CC0.', "src/wav/osfx_00.wav"),
               ('"Toyland: Sugar mine (1)". By Else.', "src/wav/osfx_01.wav"),
               ('"Unused/Nothing". Empty.', "src/wav/osfx_02.wav")]
    wav = _riff()
    blobs, offset = [], 8 * len(entries)
    table = b""
    for desc, name in entries:
        d, n = desc.encode() + b"\0", name.encode() + b"\0"
        blob = bytes([len(d)]) + d + wav + b"\0" + bytes([len(n)]) + n
        table += struct.pack("<II", offset | 0x80000000, len(wav))
        blobs.append(blob)
        offset += len(blob)
    (tmp_path / "opensfx.cat").write_bytes(table + b"".join(blobs))
    cat = open_archive(tmp_path / "opensfx.cat")
    assert cat.members() == [name for _, name in entries]
    assert cat.read("src/wav/osfx_01.wav") == wav
    hints = opensfx_titles(cat.notes, "/x/opensfx")
    assert hints["/x/opensfx/src/wav/osfx_00.wav"].words == ["factory", "whistle"]
    assert hints["/x/opensfx/src/wav/osfx_00.wav"].credit == "By Someone. License: CC0."
    assert hints["/x/opensfx/src/wav/osfx_01.wav"].words == ["sugar", "mine", "toyland"]
    assert hints["/x/opensfx/src/wav/osfx_02.wav"].drop


def test_qt_resource_and_xmoto_pack(tmp_path):
    import zlib

    from foley.data.gamesfx.archives import open_archive

    wav = _riff()
    # rcc v2: root dir -> "a" dir -> "x.wav" (zlib) and "y.wav" (plain)
    names, name_off = b"", {}
    for n in ("a", "x.wav", "y.wav"):
        name_off[n] = len(names)
        names += struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
    packed = struct.pack(">I", len(wav)) + zlib.compress(wav)
    data = struct.pack(">I", len(packed)) + packed + struct.pack(">I", len(wav)) + wav
    node = lambda name, flags, rest: struct.pack(">IH", name, flags) + rest + b"\0" * 8  # noqa: E731
    tree = (node(0, 2, struct.pack(">II", 1, 1)) + node(name_off["a"], 2, struct.pack(">II", 2, 2))
            + node(name_off["x.wav"], 1, struct.pack(">HHI", 0, 0, 0))
            + node(name_off["y.wav"], 0, struct.pack(">HHI", 0, 0, 4 + len(packed))))
    head = 24
    blob = b"qres" + struct.pack(">IIIII", 2, head, head + len(tree), head + len(tree) + len(data), 0)
    (tmp_path / "t.rcc").write_bytes(blob + tree + data + names)
    rcc = open_archive(tmp_path / "t.rcc")
    assert sorted(rcc.members()) == ["a/x.wav", "a/y.wav"]
    assert rcc.read("a/x.wav") == wav and rcc.read("a/y.wav") == wav
    # XBI3: magic, checksum, then (name, checksum, size, bytes) per file
    entry = lambda n, b: bytes([len(n)]) + n + b"\x20" + b"0" * 32 + struct.pack("<I", len(b)) + b  # noqa: E731
    (tmp_path / "xmoto.bin").write_bytes(b"XBI3\x20" + b"f" * 32 + entry(b"Textures/Sounds/a.ogg", b"OggS..")
                                         + entry(b"Themes/t.xml", b'<music name="rideALong" file="r.ogg"/>'))
    pack = open_archive(tmp_path / "xmoto.bin")
    assert pack.members() == ["Textures/Sounds/a.ogg", "Themes/t.xml"]
    assert pack.read("Textures/Sounds/a.ogg") == b"OggS.."
    (tmp_path / "other.bin").write_bytes(b"\0" * 16)
    assert open_archive(tmp_path / "other.bin") is None


def test_licence_patterns_skip_only_installation_folders():
    c = parse_copyright("""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-3+

Files: src/activities/tangram/resource/*
License: public-domain

Files: src/activities/align4-2players/resource/slide.wav
License: CC0-1.0

Files: data/weapons/plasma/*
License: CC-BY-SA-3.0-AU
""")
    rcc = "/usr/share/gcompris-qt/rcc/x/gcompris/src/activities"
    assert licence_for(c, f"{rcc}/babymatch/resource/drop.wav").name == "GPL-3+"  # not tangram's stanza
    assert licence_for(c, f"{rcc}/tangram/resource/a.wav").name == "public-domain"
    assert licence_for(c, f"{rcc}/align4_2players/resource/slide.wav").name == "CC0-1.0"
    assert licence_for(c, "/usr/share/games/re/data/sounds/weapons/plasma/x.ogg").name == "GPL-3+"
    assert licence_for(c, "/usr/share/games/re/data/weapons/plasma/x.ogg").name == "CC-BY-SA-3.0-AU"
    assert pattern_matches("base/sound/a.ogg", "/usr/share/games/ufoai/base/0snd/sound/a.ogg") is None
    assert pattern_matches("base/sound/a.ogg", "/usr/share/games/ufoai/base/0snd/sound/a.ogg",
                           ("games", "0snd")) == "base/sound/a.ogg"


def test_new_package_rules():
    from foley.data.gamesfx.games import licence_exception, supertuxkart_music, xmoto_theme

    assert category_of(["penguin", "party"], ["music"]) == "music"  # a music folder beats an animal name
    assert licence_exception("tuxtype-data", "/usr/share/tuxtype/sounds/tuxi.ogg").name == "public-domain"
    assert licence_exception("tuxtype-data", "/usr/share/tuxtype/sounds/pop.wav").name == "GPL-2"
    assert licence_exception("wesnoth-1.16-data", "/x.ogg") is None
    h = supertuxkart_music(b'<music title="Scottish bagpipes" composer="A and B" file="celtic.ogg" '
                           b'fast-filename="celtic_fast.ogg"/>', "/d/music")
    assert h["/d/music/celtic.ogg"].words == ["scottish", "bagpipes"] and h["/d/music/celtic.ogg"].category == "music"
    assert h["/d/music/celtic_fast.ogg"].words[-1] == "fast"
    assert h["/d/music/celtic.ogg"].credit == "composed by A and B"
    h = xmoto_theme('<music name="rideALong" file="ridealong.ogg" sum="1"/>', "/g/xmoto", "/g/xmoto/xmoto")
    assert h["/g/xmoto/Textures/Musics/ridealong.ogg"].words == ["ride", "along"]
    c = Candidate("pingus-data", "/p/sounds/goodidea.wav", "/p/sounds/goodidea.wav", root="/p/sounds")
    files = find_audio("pingus-data", [c.original_path])
    d = describe(c, files.hints.get(c.logical_path))
    assert d.description == 'a voice saying "good idea"' and d.category == "voice"


def test_evaluation_only_packages_never_enter_a_corpus(tmp_path):
    """supertux-data, extremetuxracer-data and sound-theme-freedesktop are kept for independent evaluation
    (bench/control_curves.py): not in the corpus's packages, refused by name, nothing written."""
    import sys
    from pathlib import Path

    from foley.data.gamesfx.games import EVALUATION_ONLY, PACKAGES
    from foley.errors import FoleyError

    assert not set(EVALUATION_ONLY) & set(PACKAGES)
    for package in EVALUATION_ONLY:
        with pytest.raises(FoleyError, match="reserved for independent evaluation"):
            build_corpus(tmp_path / "out", (package,), files_of=lambda p: [])
    assert not (tmp_path / "out").exists()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import control_curves

    assert set(control_curves.PACKAGES.split()) == set(EVALUATION_ONLY)

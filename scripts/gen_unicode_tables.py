#!/usr/bin/python3
"""Writes the Unicode and HTML tables the CLIP tokenizer's text cleaning needs, as C source.

Usage: /usr/bin/python3 scripts/gen_unicode_tables.py   (from the repository root)
Writes model/unicode_tables.c and model/html_entities.c (committed; rerun only to change Unicode version).

Every table is read from the behaviour it must reproduce, not from a property file:
- the pre-token classes by probing each code point against the CLIP pattern's own alternatives, compiled with
  the `regex` module and IGNORECASE exactly as openai/CLIP's simple_tokenizer.py compiles them;
- whitespace from str.isspace() (Python's `re` \\s, used by whitespace_clean, and str.strip());
- lowercasing from str.lower(), including its Final_Sigma rule (the Cased / Case_Ignorable sets are recovered
  by probing how lower() treats a capital sigma next to each code point);
- NFC data (canonical combining classes, canonical decompositions, primary composites) from unicodedata;
- HTML entities and the numeric-reference fix-ups from Python's html module (html.unescape).
"""
import html
import html.entities
import os
import sys
import unicodedata

import regex

MAXCP = 0x110000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ranges(pred):
    out, start = [], None
    for cp in range(MAXCP):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, MAXCP - 1))
    return out


def emit_ranges(f, name, rs):
    f.write(f"const UniRange {name}[] = {{\n")
    for i in range(0, len(rs), 6):
        f.write("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in rs[i:i + 6]) + "\n")
    f.write(f"}};\nconst int {name}_count = {len(rs)};\n\n")


def main():
    flags = regex.IGNORECASE
    letter = regex.compile(r"[\p{L}]", flags)
    number = regex.compile(r"[\p{N}]", flags)
    other = regex.compile(r"[^\s\p{L}\p{N}]", flags)

    def is_char(cp):  # lone surrogates never reach the tables (the UTF-8 decoder rejects them)
        return not (0xD800 <= cp <= 0xDFFF)

    letters = ranges(lambda cp: is_char(cp) and letter.fullmatch(chr(cp)) is not None)
    numbers = ranges(lambda cp: is_char(cp) and number.fullmatch(chr(cp)) is not None)
    others = ranges(lambda cp: is_char(cp) and other.fullmatch(chr(cp)) is not None)
    spaces = ranges(lambda cp: chr(cp).isspace())

    # Letters of the literal parts of the pattern ('s, 't, ..., <|startoftext|>) can match other code points
    # under IGNORECASE; only those that survive lower() matter, since the pattern runs on lowercased text.
    variants = []
    for ch in sorted(set("strevmld" + "startoftext" + "endoftext")):
        for cp in range(128, MAXCP):
            c = chr(cp)
            if is_char(cp) and c.lower() == c and regex.fullmatch(regex.escape(ch), c, flags):
                variants.append((ord(ch), cp))
    assert all(chr(cp).lower() == chr(cp) for _, cp in variants)

    lower1, lower_multi = [], []
    for cp in range(MAXCP):
        if not is_char(cp) or cp == 0x3A3:
            continue
        lo = chr(cp).lower()
        if lo == chr(cp):
            continue
        if len(lo) == 1:
            lower1.append((cp, ord(lo)))
        else:
            assert len(lo) <= 3
            lower_multi.append((cp, [ord(x) for x in lo] + [0] * (3 - len(lo))))

    # Final_Sigma: lower() maps U+03A3 to U+03C2 when a Cased letter precedes it (skipping Case_Ignorable)
    # and none follows. With X a probe: 'A'+X+'Σ' ends in ς iff X is ignorable or cased; 'AΣ'+X gives ς iff
    # X is ignorable or not cased. Both hold exactly for the ignorable ones.
    def final(s, i):
        return s.lower()[i] == "\u03c2"

    ignorable, cased = set(), set()
    for cp in range(MAXCP):
        if not is_char(cp):
            continue
        x = chr(cp)
        before = final("A" + x + "\u03a3", -1)
        after = final("A\u03a3" + x, 1)
        if before and after:
            ignorable.add(cp)
        elif before:
            cased.add(cp)
    ignorable_r = ranges(lambda cp: cp in ignorable)
    cased_r = ranges(lambda cp: cp in cased)

    # NFC
    ccc = []
    for cp in range(MAXCP):
        c = unicodedata.combining(chr(cp))
        if c:
            if ccc and ccc[-1][1] == cp - 1 and ccc[-1][2] == c:
                ccc[-1][1] = cp
            else:
                ccc.append([cp, cp, c])
    decomp, comp = [], []
    for cp in range(MAXCP):
        if 0xAC00 <= cp <= 0xD7A3 or not is_char(cp):
            continue  # Hangul syllables are handled algorithmically
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert len(parts) in (1, 2)
        decomp.append((cp, parts[0], parts[1] if len(parts) == 2 else 0))
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    # The C fast path skips NFC for text below U+0300: nothing there decomposes into something that changes
    # under NFC, and no composition pair has its second member there.
    assert min(b for _, b, _ in comp) >= 0x300
    assert all(unicodedata.is_normalized("NFC", chr(cp)) for cp in range(0x300))

    with open(os.path.join(ROOT, "model/unicode_tables.c"), "w") as f:
        f.write("// GENERATED by scripts/gen_unicode_tables.py from Python %s (unicodedata %s) and regex %s.\n"
                "// Do not edit; rerun the script. See model/unicode_tables.h for what each table is.\n"
                '#include "model/unicode_tables.h"\n\n' % (sys.version.split()[0], unicodedata.unidata_version,
                                                          regex.__version__))
        emit_ranges(f, "uni_letter", letters)
        emit_ranges(f, "uni_number", numbers)
        emit_ranges(f, "uni_other", others)
        emit_ranges(f, "uni_space", spaces)
        emit_ranges(f, "uni_cased", cased_r)
        emit_ranges(f, "uni_case_ignorable", ignorable_r)
        f.write("const UniMap uni_lower[] = {\n")
        for i in range(0, len(lower1), 6):
            f.write("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in lower1[i:i + 6]) + "\n")
        f.write(f"}};\nconst int uni_lower_count = {len(lower1)};\n\n")
        f.write("const UniSeq uni_lower_multi[] = {\n")
        for cp, seq in lower_multi:
            f.write(f"    {{0x{cp:X}, {{0x{seq[0]:X}, 0x{seq[1]:X}, 0x{seq[2]:X}}}}},\n")
        f.write(f"}};\nconst int uni_lower_multi_count = {len(lower_multi)};\n\n")
        f.write("const UniMap uni_pattern_variant[] = {\n")
        for a, b in variants:
            f.write(f"    {{0x{a:X}, 0x{b:X}}},\n")
        f.write(f"}};\nconst int uni_pattern_variant_count = {len(variants)};\n\n")
        f.write("const UniClassRange uni_ccc[] = {\n")
        for i in range(0, len(ccc), 5):
            f.write("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {c}}}," for a, b, c in ccc[i:i + 5]) + "\n")
        f.write(f"}};\nconst int uni_ccc_count = {len(ccc)};\n\n")
        f.write("const UniDecomp uni_decomp[] = {\n")
        for i in range(0, len(decomp), 4):
            f.write("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in decomp[i:i + 4]) + "\n")
        f.write(f"}};\nconst int uni_decomp_count = {len(decomp)};\n\n")
        f.write("const UniCompose uni_compose[] = {\n")
        for i in range(0, len(comp), 4):
            f.write("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in comp[i:i + 4]) + "\n")
        f.write(f"}};\nconst int uni_compose_count = {len(comp)};\n")

    ents = sorted(html.entities.html5.items())
    invalid_refs = sorted(html._invalid_charrefs.items())
    invalid_cps = sorted(html._invalid_codepoints)
    with open(os.path.join(ROOT, "model/html_entities.c"), "w") as f:
        f.write("// GENERATED by scripts/gen_unicode_tables.py from Python %s's html module (HTML5 named character\n"
                "// references and html.unescape()'s numeric fix-ups). Do not edit; rerun the script.\n"
                '#include "model/unicode_tables.h"\n\n' % sys.version.split()[0])
        f.write("// Sorted by name (bytewise), for binary search. Names without ';' are the legacy forms.\n")
        f.write("const HtmlEntity html_entities[] = {\n")
        for name, val in ents:
            cps = [ord(c) for c in val] + [0] * (2 - len(val))
            f.write(f'    {{"{name}", {{0x{cps[0]:X}, 0x{cps[1]:X}}}}},\n')
        f.write(f"}};\nconst int html_entities_count = {len(ents)};\n\n")
        f.write("// &#N; with N here is replaced by the mapped code point (Windows-1252 reading, as browsers do).\n")
        f.write("const UniMap html_invalid_charrefs[] = {\n")
        for a, b in invalid_refs:
            f.write(f"    {{0x{a:X}, 0x{ord(b):X}}},\n")
        f.write(f"}};\nconst int html_invalid_charrefs_count = {len(invalid_refs)};\n\n")
        f.write("// &#N; with N here is dropped (control characters and noncharacters).\n")
        f.write("const uint32_t html_invalid_codepoints[] = {\n")
        for i in range(0, len(invalid_cps), 8):
            f.write("    " + " ".join(f"0x{c:X}," for c in invalid_cps[i:i + 8]) + "\n")
        f.write(f"}};\nconst int html_invalid_codepoints_count = {len(invalid_cps)};\n")
    print(f"letters {len(letters)} numbers {len(numbers)} others {len(others)} spaces {len(spaces)} "
          f"lower {len(lower1)}+{len(lower_multi)} cased {len(cased_r)} ignorable {len(ignorable_r)} "
          f"ccc {len(ccc)} decomp {len(decomp)} compose {len(comp)} entities {len(ents)} variants {variants}")


if __name__ == "__main__":
    main()

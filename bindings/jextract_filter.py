#!/usr/bin/env python3
"""Helpers for bindings/generate.sh (impasto's own code, not part of jextract).

expand SYMBOLS DUMP ARGFILE
    Turns a *.symbols filter list into a jextract @argfile. DUMP is the output of
    `jextract --dump-includes` for the same header, i.e. every symbol clang saw, by kind. Globs are
    expanded against it; a name or glob that matches nothing stops generation, unless marked "optional".

torch-header TORCH_INCLUDE SYMBOLS OUT_H
    PyTorch's C shim headers are C++ headers (`using X = Y*;`, c10::Half parameters, templates), so clang
    cannot read them as C and jextract reads only C. This writes a C header holding the prototypes of
    exactly the functions listed in SYMBOLS, copied from the installed headers (whitespace normalised,
    an empty parameter list written `(void)`, which is what `()` means in C++), and the typedefs they
    use, with `using X = Y*;` for an opaque `struct Y` written `typedef struct Y *X;` (same ABI).
"""
import fnmatch
import os
import re
import sys

KINDS = ("function", "constant", "typedef", "struct", "union", "var")


def read_symbols(path):
    entries = []
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if parts[0] not in KINDS or len(parts) > 3 or (len(parts) == 3 and parts[2] != "optional"):
                sys.exit(f"{path}:{lineno}: expected '<kind> <name-or-glob> [optional]' with kind in "
                         f"{', '.join(KINDS)}; got: {raw.rstrip()}")
            entries.append((parts[0], parts[1], len(parts) == 3, lineno))
    return entries


def read_dump(path):
    by_kind = {k: [] for k in KINDS}
    with open(path) as f:
        for raw in f:
            m = re.match(r"--include-(\w+)\s+(\S+)", raw)
            if m and m.group(1) in by_kind:
                by_kind[m.group(1)].append(m.group(2))
    return by_kind


def expand(symbols_path, dump_path, argfile_path):
    by_kind = read_dump(dump_path)
    chosen, missing_optional, errors = [], [], []
    for kind, pattern, optional, lineno in read_symbols(symbols_path):
        names = [n for n in by_kind[kind] if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            if optional:
                missing_optional.append(f"{kind} {pattern}")
            else:
                errors.append(f"{symbols_path}:{lineno}: no {kind} named '{pattern}' in the header")
        chosen.extend((kind, n) for n in names)
    if errors:
        sys.exit("\n".join(errors))
    seen, lines = set(), []
    for kind, name in chosen:
        if (kind, name) not in seen:
            seen.add((kind, name))
            lines.append(f"--include-{kind} {name}")
    with open(argfile_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    counts = {k: sum(1 for kind, _ in seen if kind == k) for k in KINDS}
    summary = ", ".join(f"{v} {k}s" for k, v in counts.items() if v)
    print(f"{os.path.basename(symbols_path)}: {summary}")
    for m in missing_optional:
        print(f"{os.path.basename(symbols_path)}: optional {m} not in this header, skipped")


# --- PyTorch C shim -> C header

TORCH_HEADERS = (
    "torch/csrc/inductor/aoti_torch/c/macros.h",
    "torch/csrc/inductor/aoti_torch/c/shim.h",
    "torch/csrc/inductor/aoti_torch/c/shim_deprecated.h",
    "torch/csrc/inductor/aoti_torch/generated/c_shim_cuda.h",
    "torch/csrc/stable/c/shim.h",
)

C_WORDS = {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "const", "bool",
           "struct", "size_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
           "uint64_t"}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def conditions_by_offset(text):
    """For each declaration offset, the #if conditions around it (include guards and __cplusplus left out)."""
    spans, stack, pos = [], [], 0
    for line in text.splitlines(keepends=True):
        d = line.strip()
        if d.startswith("#if") or d.startswith("#ifdef") or d.startswith("#ifndef"):
            stack.append(d)
        elif d.startswith("#else") and stack:
            stack[-1] = "not(" + stack[-1] + ")"
        elif d.startswith("#endif") and stack:
            stack.pop()
        spans.append((pos, [c for c in stack if "__cplusplus" not in c and not re.match(r"#ifndef \w+_H?\b|#ifndef AOTI_|#ifndef STABLE_", c)]))
        pos += len(line)
    return spans


def torch_header(include_dir, symbols_path, out_path):
    wanted = [(k, n, opt) for k, n, opt, _ in read_symbols(symbols_path)]
    protos, usings, conds, origin = {}, {}, {}, {}
    version = {}
    vpath = os.path.join(include_dir, "torch/headeronly/version.h")
    if os.path.exists(vpath):
        for m in re.finditer(r"#define TORCH_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)", open(vpath).read()):
            version[m.group(1)] = m.group(2)
    for rel in TORCH_HEADERS:
        path = os.path.join(include_dir, rel)
        if not os.path.exists(path):
            sys.exit(f"{path}: missing (TORCH_INCLUDE should be the 'include' folder of a PyTorch install)")
        text = strip_comments(open(path).read())
        spans = conditions_by_offset(text)

        def cond_at(off):
            active = []
            for start, c in spans:
                if start > off:
                    break
                active = c
            return active

        for m in re.finditer(r"\busing\s+(\w+)\s*=\s*([\w\s]+?)\s*(\*?)\s*;", text):
            name, target, star = m.group(1), m.group(2), m.group(3)
            if star and re.search(r"\bstruct\s+" + re.escape(target) + r"\s*;", text):
                usings[name] = f"typedef struct {target} *{name};"
            elif not star:
                usings[name] = f"typedef {target} {name};"
        for m in re.finditer(r"AOTI_TORCH_EXPORT\s+([\w\s\*:<>]+?)\s*\b(\w+)\s*\(((?:[^;()]|\([^;()]*\))*)\)\s*;", text):
            ret, name, params = m.group(1), m.group(2), m.group(3)
            params = " ".join(params.split())
            params = re.sub(r"\s*,\s*", ", ", params)
            params = re.sub(r"\s*\*", "*", params)
            ret = re.sub(r"\s*\*", "*", " ".join(ret.split()))
            proto = f"{ret} {name}({params or 'void'});"
            if name in protos and protos[name] != proto:
                sys.exit(f"{name}: declared differently in {origin[name]} and {rel}:\n  {protos[name]}\n  {proto}")
            protos[name] = proto
            conds[name] = cond_at(m.start())
            origin[name] = rel
    out_lines, missing, needed_types = [], [], []
    for kind, name, optional in wanted:
        if kind != "function":
            continue
        if name not in protos:
            if optional:
                print(f"{os.path.basename(symbols_path)}: optional function {name} not declared in the headers, skipped")
                continue
            missing.append(name)
            continue
        proto = protos[name]
        for word in re.findall(r"[A-Za-z_][\w:<>]*", proto.replace(name + "(", "(")):
            if "::" in word:
                sys.exit(f"{name}: parameter type '{word}' is C++ only; leave this function out of {symbols_path}")
            if word not in C_WORDS and word not in needed_types and word in usings:
                needed_types.append(word)
        note = origin[name] + (" [" + ", ".join(c.lstrip("#") for c in conds[name]) + "]" if conds[name] else "")
        out_lines.append(f"/* {note} */")
        out_lines.append(proto)
    if missing:
        sys.exit("not declared in the PyTorch headers under " + include_dir + ": " + ", ".join(missing))
    for kind, name, _ in wanted:
        if kind == "typedef" and name not in needed_types:
            if name not in usings:
                sys.exit(f"typedef {name}: no 'using {name} = ...;' in the PyTorch headers")
            needed_types.append(name)
    ver = ".".join(version.get(k, "?") for k in ("MAJOR", "MINOR", "PATCH"))
    head = [
        "/* GENERATED by bindings/generate.sh (bindings/jextract_filter.py torch-header) -- do not edit.",
        f" * C declarations of a subset of the PyTorch {ver} AOTInductor / stable C shim ABI, copied from:",
        *[f" *   {h}" for h in TORCH_HEADERS],
        " * Those headers are C++ (using-aliases, c10:: types, templates), which jextract cannot read.",
        " * Prototypes are verbatim except for whitespace and '()' written '(void)'; 'using X = Y*;' for an",
        " * opaque struct Y is written 'typedef struct Y *X;'. The [..] note is the #if guard around the",
        " * declaration in the original header (USE_CUDA functions live in libtorch_cuda.so). */",
        "#ifndef IMPASTO_TORCH_ABI_H",
        "#define IMPASTO_TORCH_ABI_H",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
    ]
    macros = open(os.path.join(include_dir, TORCH_HEADERS[0])).read()
    for m in re.finditer(r"#define (AOTI_TORCH_(?:SUCCESS|FAILURE))\s+(\d+)", macros):
        head.append(f"#define {m.group(1)} {m.group(2)}")
    # AOTITorchError and friends first: opaque handles need only their struct tag
    ordered = sorted(needed_types, key=lambda t: (not usings[t].startswith("typedef int"), t))
    head += [""] + [usings[t] for t in ordered] + [""]
    with open(out_path, "w") as f:
        f.write("\n".join(head + out_lines + ["", "#endif", ""]))
    print(f"{os.path.basename(out_path)}: {sum(1 for l in out_lines if not l.startswith('/*'))} prototypes, "
          f"{len(needed_types)} typedefs from PyTorch {ver} headers")


def main(argv):
    if len(argv) == 4 and argv[0] == "expand":
        expand(*argv[1:])
    elif len(argv) == 4 and argv[0] == "torch-header":
        torch_header(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

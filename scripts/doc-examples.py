#!/usr/bin/env python3
"""Runs the SQL examples of a Markdown file, as pasted and in order, and compares what psql prints with the doc.

Usage: doc-examples.py [--accept] FILE.md PSQL_ARGS...

The doc's ```sql blocks run one after the other in one psql session (so a SET or \\x stays in force for the
blocks below it, as it would for a reader pasting them). A block followed by a ```text block must print exactly
that block; a block with no ```text block after it must print nothing. Only whitespace is normalised: trailing
spaces, and blank lines (psql ends every result with one). Two values are random by nature and compared by
shape only: UUIDs (reservation ids) and the server process id of a notification. Two kinds of ```sql block are not run:
  - signatures, whose first line starts with `quota.` (a declaration to read, not a statement), and
  - blocks whose fence says ```sql norun (illustrations that name objects of the reader's own database).
Errors are compared without psql's `psql:<file>:<line>: ` location prefix, which names our temporary file.

--accept writes what psql printed into the doc's ```text blocks (review it with git diff).
"""
import difflib
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S*)(.*)$")
MARKER = "@@doc-example {}@@"
LOCATION = re.compile(r"^psql:[^:\n]*:\d+: ", re.MULTILINE)


class Block:
    def __init__(self, lang, info, start, end, body):
        self.lang, self.info, self.start, self.end, self.body = lang, info.strip(), start, end, body
        self.expected = None  # the ```text block right after it, if any


def parse(lines):
    """The fenced blocks of the doc; each ```sql block gets the ```text block that directly follows it."""
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            sys.exit(f"unclosed code fence at line {i + 1}")
        blocks.append(Block(m.group(1), m.group(2), i, j, lines[i + 1 : j]))
        i = j + 1
    for a, b in zip(blocks, blocks[1:]):
        between = lines[a.end + 1 : b.start]
        if a.lang == "sql" and b.lang == "text" and all(not line.strip() for line in between):
            a.expected = b
    return blocks


def runnable(block):
    if block.lang != "sql" or "norun" in block.info.split():
        return False
    first = next((line for line in block.body if line.strip() and not line.startswith("--")), "")
    return not first.startswith("quota.")


UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
PID = re.compile(r"(received from server process with PID) \d+")


def normalise(text):
    text = PID.sub(r"\1 <pid>", UUID.sub("<uuid>", text))
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def run(blocks, psql):
    """One psql session over every runnable block; returns each block's output."""
    script = []
    for n, block in enumerate(blocks):
        script.append(f"\\echo {MARKER.format(n)}")
        script.extend(block.body)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write("\n".join(script) + "\n")
        f.flush()
        # No ON_ERROR_STOP: an example that shows an error goes on to the next statement, as psql does for a reader.
        out = subprocess.run(psql + ["-X", "-q", "-f", f.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout
    out = LOCATION.sub("", out)
    parts = re.split(r"^@@doc-example (\d+)@@\n?", out, flags=re.MULTILINE)
    if parts[0].strip():
        sys.exit(f"unexpected output before the first example:\n{parts[0]}")
    return {int(parts[k]): parts[k + 1] for k in range(1, len(parts), 2)}


def main():
    args = sys.argv[1:]
    accept = bool(args) and args[0] == "--accept"
    if accept:
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    path, psql = args[0], args[1:]
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks = [b for b in parse(lines) if runnable(b)]
    outputs = run(blocks, psql)
    failures, replace = 0, {}
    for n, block in enumerate(blocks):
        got = outputs.get(n, "")
        want = "\n".join(block.expected.body) if block.expected else ""
        if normalise(got) == normalise(want):
            continue
        if accept and block.expected:
            replace[block.expected.start] = (block.expected.end, [l.rstrip() for l in got.strip("\n").split("\n")])
            continue
        failures += 1
        print(f"{path}:{block.start + 1}: the example's output differs from the doc"
              + ("" if block.expected else " (it has no ```text block, so it must print nothing)"))
        for line in difflib.unified_diff(normalise(want), normalise(got), "doc", "psql", lineterm="", n=1):
            print("    " + line)
    if replace:
        new, i = [], 0
        while i < len(lines):
            if i in replace:
                end, body = replace[i]
                new += [lines[i]] + body + [lines[end]]
                i = end + 1
            else:
                new.append(lines[i])
                i += 1
        open(path, "w", encoding="utf-8").write("\n".join(new))
        print(f"{path}: rewrote {len(replace)} output block(s)")
    print(f"{path}: {len(blocks)} examples run, {failures} differ", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

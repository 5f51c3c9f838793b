"""Samples of an operator's compiled code placed on its source lines, for scripts/profile-operator.

    profile_lines.py LINES SYMBOLS PERF_MAP SAMPLES TOP

LINES: `llvm-dwarfdump --debug-line` of the compiled component (the cache's .cwasm, an ELF
object whose DWARF wasmtime wrote from the guest's); SYMBOLS: `nm` of it; PERF_MAP: the
/tmp/perf-PID.map wasmtime wrote (where each function was loaded); SAMPLES: `perf script -F
pid,ip` (one process). A sample in a function of the map is moved to the function's place in the object
(`nm`), then to the last line-table row at or before it.
"""

import bisect
import collections
import re
import sys


def line_rows(path):
    """(address, "dir/file:line") of every row, sorted by address."""
    rows, dirs, files, current = [], {}, {}, None
    for text in open(path):
        if text.startswith("debug_line["):
            dirs, files, current = {}, {}, None
        elif m := re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', text):
            dirs[int(m[1])] = m[2]
        elif m := re.match(r"file_names\[\s*(\d+)\]:", text):
            current = int(m[1])
            files[current] = ["?", 0]
        elif (m := re.match(r'\s+name: "(.*)"', text)) and current is not None:
            files[current][0] = m[1]
        elif (m := re.match(r"\s+dir_index: (\d+)", text)) and current is not None:
            files[current][1] = int(m[1])
        elif (m := re.match(r"0x([0-9a-f]+)\s+(\d+)\s+\d+\s+(\d+)", text)) and "end_sequence" not in text:
            name, d = files.get(int(m[3]), ["?", 0])
            full = f"{dirs.get(d, '')}/{name}"
            rows.append((int(m[1], 16), f"{'/'.join(full.split('/')[-3:])}:{m[2]}"))
    rows.sort()
    return rows


def main():
    lines, symbols, perf_map, samples, top = sys.argv[1:6]
    rows = line_rows(lines)
    addresses = [a for a, _ in rows]
    # Where each function is in the object, by its index (`wasm[M]::function[N]`, which both
    # the symbols and the map's names begin with).
    index = re.compile(r"wasm\[\d+\]::function\[\d+\]")
    in_object = {}
    for text in open(symbols):
        parts = text.split(maxsplit=2)
        if len(parts) == 3 and (m := index.match(parts[2])):
            in_object[m[0]] = int(parts[0], 16)
    # Where each function was loaded: (start, size, object address) sorted by start.
    loaded = []
    for text in open(perf_map):
        start, size, name = text.rstrip("\n").split(" ", 2)
        if (m := index.match(name)) and m[0] in in_object:
            loaded.append((int(start, 16), int(size, 16), in_object[m[0]]))
    loaded.sort()
    starts = [s for s, _, _ in loaded]
    by_line, by_file = collections.Counter(), collections.Counter()
    total = operator = 0
    for text in open(samples):
        parts = text.split()
        if len(parts) < 2:
            continue
        total += 1
        ip = int(parts[1], 16)
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= loaded[i][0] + loaded[i][1]:
            continue
        operator += 1
        j = bisect.bisect_right(addresses, ip - loaded[i][0] + loaded[i][2]) - 1
        line = rows[j][1] if j >= 0 else "?"
        by_line[line] += 1
        by_file[line.rsplit(":", 1)[0]] += 1
    if operator == 0:
        sys.exit("no sample fell in the operator's code: was it compiled with WEIR_DEBUG_INFO and WEIR_PERFMAP?")
    print(f"{operator} of {total} samples ({100 * operator / total:.0f}%) in the operator's code\n")
    print("| share | source file |\n|---|---|")
    for name, n in by_file.most_common(int(top)):
        print(f"| {100 * n / operator:.1f}% | {name} |")
    print("\n| share | source line |\n|---|---|")
    for name, n in by_line.most_common(int(top)):
        print(f"| {100 * n / operator:.1f}% | {name} |")


if __name__ == "__main__":
    main()

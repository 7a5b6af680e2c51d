#!/usr/bin/env python3
"""Prints the functions of one binary that ran, most instructions first, from a
callgrind profile written with --demangle=no: `functions.py PROFILE BINARY_NAME`.
Callgrind marks a recursive function's deeper calls with 'N; they are one symbol."""
import collections
import re
import sys

profile, binary = sys.argv[1], sys.argv[2]
names, objects = {}, {}
cost = collections.Counter()
current_object = current_function = None
call_cost_follows = False


def name(table, text):
    """Callgrind names a thing in full once, `(id) name`, and by `(id)` after."""
    match = re.match(r"\((\d+)\)(?: (.*))?$", text)
    if not match:
        return text
    if match.group(2) is not None:
        table[match.group(1)] = match.group(2)
    return table.get(match.group(1), text)


for line in open(profile, errors="replace"):
    line = line.rstrip("\n")
    key, _, value = line.partition("=")
    if key == "ob":
        current_object = name(objects, value)
    elif key == "cob":
        name(objects, value)
    elif key == "fn":
        current_function = re.sub(r"'\d+$", "", name(names, value))
        cost[(current_object, current_function)] += 0
    elif key == "cfn":
        name(names, value)
    elif key == "calls":
        call_cost_follows = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if call_cost_follows:
            call_cost_follows = False  # a call's inclusive cost, not the caller's own
            continue
        fields = line.split()
        if len(fields) >= 2 and current_function is not None:
            cost[(current_object, current_function)] += int(fields[1])

seen = set()
for (obj, function), _ in sorted(cost.items(), key=lambda item: -item[1]):
    if obj and obj.rsplit("/", 1)[-1] == binary and function not in seen:
        seen.add(function)
        print(function)

"""Expands an HTCondor submit file into its jobs, as condor_submit would, without a pool.

Usage: python expand_jobs.py FILE.sub [NAME=VALUE ...]

The NAME=VALUE assignments come before the file, like condor_submit's command-line assignments.
Uses the HTCondor Python bindings (PyPI `htcondor`, module `htcondor2`): `Submit` parses the file
(including `if defined` blocks) and `expand` evaluates the macros ($(Process), $INT(...),
$Fnx(...)) of one job once `Process` is set. Prints, tab-separated, one line per fact:

    count   N
    job     I
    arg     ARGUMENT        (one line per argument, in order)
    KEY     VALUE           (executable, transfer_output_files, ... when the file sets them)
"""

import sys

try:
    import htcondor2 as htcondor
except ImportError as e:
    sys.exit(
        f"cannot import htcondor2 ({e}): install the HTCondor Python bindings, "
        "pip install -r python/requirements-ci.txt (htcondor)"
    )

KEYS = [
    "executable",
    "transfer_executable",
    "transfer_input_files",
    "transfer_output_files",
    "transfer_output_remaps",
    "should_transfer_files",
    "request_cpus",
    "output",
    "error",
    "log",
]


def split_arguments(text):
    """Splits an `arguments` value in HTCondor's new syntax: surrounded by double quotes,
    whitespace-separated, single quotes group (a doubled quote is a literal one)."""
    text = text.strip()
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        sys.exit(f"arguments are not in the new (double-quoted) syntax: {text!r}")
    text = text[1:-1].replace('""', '"')
    args, current, quoted, have, i = [], "", False, False, 0
    while i < len(text):
        c = text[i]
        if c == "'":
            if quoted and text[i + 1 : i + 2] == "'":
                current += "'"
                i += 1
            else:
                quoted = not quoted
                have = True
        elif c.isspace() and not quoted:
            if have:
                args.append(current)
            current, have = "", False
        else:
            current += c
            have = True
        i += 1
    if quoted:
        sys.exit(f"unbalanced single quote in arguments: {text!r}")
    if have:
        args.append(current)
    return args


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path, assignments = sys.argv[1], sys.argv[2:]
    prefix = ""
    for a in assignments:
        if "=" not in a:
            sys.exit(f"expected NAME=VALUE, got {a!r}")
        name, value = a.split("=", 1)
        prefix += f"{name} = {value}\n"
    with open(path) as f:
        text = prefix + f.read()

    def submit(process):
        s = htcondor.Submit(text)
        s["Process"] = str(process)
        s["ClusterId"] = "1"
        return s

    first = submit(0)
    qargs = first.getQArgs().strip()
    first["FLASHC_TEST_QUEUE"] = qargs
    count_text = first.expand("FLASHC_TEST_QUEUE").strip()
    if not count_text.isdigit():
        sys.exit(f"the queue statement is not `queue COUNT`: {qargs!r} -> {count_text!r}")
    count = int(count_text)
    print(f"count\t{count}")
    for process in range(count):
        s = submit(process)
        print(f"job\t{process}")
        for arg in split_arguments(s.expand("arguments")):
            print(f"arg\t{arg}")
        for key in KEYS:
            if key in s:
                print(f"{key}\t{s.expand(key)}")


if __name__ == "__main__":
    main()

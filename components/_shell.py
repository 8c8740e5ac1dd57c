"""Shell fragments shared by the container components (POSIX ``sh``, no bashisms).

Each component's command is ``sh -ec SCRIPT STEP-NAME ARG...``: the script reads its
arguments by position, rebuilds optional flags with ``set --`` and ends in one or more
``qdtrack`` calls. ``set -f`` turns off globbing so overrides such as ``train.lr=1e-3``
are passed as written.
"""

from __future__ import annotations

OVERRIDES_TO_SET_FLAGS = 'set --\nfor kv in $overrides; do set -- "$@" --set "$kv"; done'
"""Turn ``$overrides`` ("k=v k2=v2", split on spaces) into ``--set k=v --set k2=v2``."""


def scratch_tree(*links: tuple[str, str]) -> str:
    """``cd`` into a fresh folder where each ``(variable, path)`` is linked at ``path``.

    The DVC stages' relative paths (``data/dataset``, ``data/converted``) then name the
    input artifacts, wherever KFP downloaded them.
    """
    lines = ["work=$(mktemp -d)"]
    for variable, path in links:
        parent = path.rsplit("/", 1)[0]
        lines.append(f'mkdir -p "$work/{parent}" && ln -s "${variable}" "$work/{path}"')
    lines.append('cd "$work"')
    return "\n".join(lines)


def command(script: str, step: str) -> list[str]:
    """The container command: ``sh -ec`` with the script; ``$0`` names the step in errors."""
    return ["sh", "-ec", "set -f\n" + script.strip() + "\n", step]

import sys
s=sys.stdin.read()
reps=[
('''from lrgym.actions import LogLRAction
''','''from lrgym.actions import LogLRAction
from lrgym.file_checks import MAX_WEIGHTS_BYTES, check_regular_file, read_json
'''),
('''def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not strict JSON")


''',''),
('''    card_path = Path(path) / CARD
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
        card = AgentCard(**_check_card(data, card_path))
    except FileNotFoundError:
        raise AgentLoadError(
            f"{card_path} is missing: is {path} an lrgym agent directory?"
        ) from None
    except (ValueError, TypeError, OSError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, AgentLoadError):
            raise
        raise AgentLoadError(f"{card_path} is corrupt ({exc}); retrain or re-download it") from None''',
'''    card_path = Path(path) / CARD
    if not card_path.exists() and not card_path.is_symlink():
        raise AgentLoadError(f"{card_path} is missing: is {path} an lrgym agent directory?")
    try:  # a regular file of bounded size, strict JSON (lrgym.file_checks)
        data = read_json(card_path, "agent card", error=AgentLoadError, expect=None)
        card = AgentCard(**_check_card(data, card_path))
    except (ValueError, TypeError, OSError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, AgentLoadError):
            raise
        raise AgentLoadError(f"{card_path} is corrupt ({exc}); retrain or re-download it") from None
    try:  # ranges: a negative step, min_lr >= max_lr ... (LogLRAction checks them)
        LogLRAction(**card.action)
    except (ValueError, TypeError) as exc:
        raise AgentLoadError(
            f"{card_path}: its action mapping {card.action} is invalid ({exc}); the card is "
            "corrupt, retrain or re-download the agent"
        ) from None'''),
('''    path = resolve_agent(name_or_path)
    card = load_card(path)''','''    if not isinstance(name_or_path, str | Path):
        raise TypeError(
            f"load_agent takes a shipped agent's name or an agent directory (str or Path), "
            f"got {type(name_or_path).__name__} {name_or_path!r}"
        )
    path = resolve_agent(name_or_path)
    card = load_card(path)'''),
('''    file = path / POLICY
    if not file.is_file():''','''    file = path / POLICY
    if not file.exists():'''),
('''    try:
        tensors = load_file(file)''','''    check_regular_file(file, "policy weights", max_bytes=MAX_WEIGHTS_BYTES, error=AgentLoadError)
    try:
        tensors = load_file(file)'''),
]
for a,b in reps:
    assert a in s, a[:50]
    s=s.replace(a,b)
sys.stdout.write(s)

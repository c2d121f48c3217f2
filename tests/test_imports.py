"""The package's and the tests' imports, read from the source (every import
statement, in functions too): no module imports itself through others, and
the deploy package runs in one direction (its runtime side imports nothing
of its export side, and needs no torch at import time)."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ('ghostnet_mmdet', 'tests')
# The runtime side of ghostnet_mmdet.deploy, and what it must not import.
RUNTIME_SIDE = ('ghostnet_mmdet.deploy.contract', 'ghostnet_mmdet.deploy.app_postprocess',
                'ghostnet_mmdet.deploy.backends', 'ghostnet_mmdet.deploy.runtime_detector')
EXPORT_SIDE = ('ghostnet_mmdet.deploy.export', 'ghostnet_mmdet.deploy.quantize')
# Not at import time in the runtimes' own modules (backends, contract, the
# app's post-processing): a phone-side reader of them needs NumPy alone.
HEAVY = ('torch', 'mmdet', 'mmengine', 'mmcv')


def module_files():
    files = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob('*.py')):
            parts = list(path.relative_to(REPO).with_suffix('').parts)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            files['.'.join(parts)] = path
    return files


def imports_of(name, path, modules):
    """``(imported module, line, at module level)`` for every import of
    ``path`` (module ``name``), relative ones resolved; a ``from package
    import name`` that names a module is an import of that module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f'{base}.{alias.name}'
                found.append((full if full in modules else base, node.lineno,
                              id(node) in top_level))
    return found


def import_graph():
    modules = module_files()
    graph = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line, _ in imports_of(name, path, modules):
            if target in modules and target != name:
                graph[name].setdefault(target, line)
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        stack.append(node)
        for target in graph[node]:
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(
        f'{a} (line {graph[a][b]})' for a, b in zip(cycle, cycle[1:])) + f' -> {cycle[-1]}'


def test_the_cycle_finder_finds_a_cycle():
    graph = {'a': {'b': 1}, 'b': {'c': 2}, 'c': {'a': 3}, 'd': {'a': 4}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b': 1}, 'b': {}}) is None


def test_the_deploy_runtime_side_does_not_import_the_export_side():
    modules = module_files()
    wrong, heavy = [], []
    for name, path in modules.items():
        if not name.startswith(RUNTIME_SIDE):
            continue
        for target, line, top in imports_of(name, path, modules):
            if target.startswith(EXPORT_SIDE):
                wrong.append(f'{name}:{line} imports {target}')
            if top and target.split('.')[0] in HEAVY and \
                    not name.startswith('ghostnet_mmdet.deploy.runtime_detector'):
                heavy.append(f'{name}:{line} imports {target} at import time')
    assert not wrong, wrong
    assert not heavy, heavy
    assert any(name.startswith('ghostnet_mmdet.deploy.backends.') for name in modules)

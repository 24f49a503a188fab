"""The code's structure (issue 40): which way the imports point (`benchmarks/` and `recipes/` import `zoo`, never
the reverse; no import cycle, imports inside functions included), one owner per concept (the run directory's
names, the input limit), the model a Task, and measurements in docs rather than in the code."""

import ast
import io
import pathlib
import re
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "recipes", "benchmarks")


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root=ROOT):
    return {module_name(p, root): p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))}


def import_graph(modules):
    """{module: the project modules it imports, at the top or inside functions}. `from package import name` points
    at the module `package.name` where there is one, else at the package."""
    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                            for alias in node.names]
            else:
                continue
            targets |= {owner(i) for i in imported if i.split(".")[0] in PACKAGES}
        graph[name] = targets - {name, ""}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_among_the_project_modules():
    graph = import_graph(project_modules())
    assert len(graph) > 40 and graph["zoo.experiment"] >= {"zoo.export", "zoo.text_classifier"}
    assert cycles(graph) == []


def test_zoo_imports_neither_recipes_nor_benchmarks():
    graph = import_graph(project_modules())
    upward = sorted((name, target) for name, targets in graph.items() if name.split(".")[0] == "zoo"
                    for target in targets if target.split(".")[0] != "zoo")
    assert upward == []


def test_the_checks_find_what_they_must(tmp_path):
    for package, files in {"zoo": {"a.py": "def f():\n    from zoo import b\n", "b.py": "import zoo.a\n",
                                   "c.py": "from recipes import d\n"},
                           "recipes": {"d.py": ""}, "benchmarks": {}}.items():
        (tmp_path / package).mkdir()
        for name, text in files.items():
            (tmp_path / package / name).write_text(text)
    graph = import_graph(project_modules(tmp_path))
    assert graph == {"zoo.a": {"zoo.b"}, "zoo.b": {"zoo.a"}, "zoo.c": {"recipes.d"}, "recipes.d": set()}
    assert cycles(graph) == [["zoo.a", "zoo.b"]]


# The run directory's files (`zoo.runs`). "config.json" also names the files of a weights checkpoint or a saved
# vectorizer, which the backbones, the pretrained-weight sources and the assets read.
RUN_FILES = ("model.keras", "held_out_texts.json", "metrics.json", "history.jsonl", "history.json", "report.txt",
             "test_predictions.jsonl", "confusion_matrix.png", "training_curves.png", "mlflow.json",
             "best.weights.h5")
OTHER_CONFIG_FILES = ("zoo/backbones/", "zoo/pretrained.py", "zoo/assets.py")


def spelled_names(path):
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_run_directory_file_names_are_spelled_in_zoo_runs_only():
    offenders = {}
    for name, path in project_modules().items():
        if name == "zoo.runs":
            continue
        relative = path.relative_to(ROOT).as_posix()
        names = set(RUN_FILES) | (set() if relative.startswith(OTHER_CONFIG_FILES) else {"config.json"})
        found = sorted(n for n in spelled_names(path) if any(n == f or n.endswith("/" + f) for f in names))
        if found:
            offenders[relative] = found
    assert not offenders, f"run-directory file names outside zoo/runs.py: {offenders}"


def test_the_guard_sees_a_spelled_name(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Writes metrics.json."""\nPATH = "metrics.json"\n')
    assert spelled_names(module) == {"metrics.json"}


def test_text_classifier_holds_a_task_not_the_training_policy():
    """The model holds what a keras-hub Task holds; how it trains is zoo.training's (issue 40: at most 250 lines)."""
    source = (ROOT / "zoo" / "text_classifier.py").read_text()
    assert len(source.splitlines()) <= 250
    tree = ast.parse(source)
    methods = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert {"fit", "predict", "evaluate", "call", "get_config", "from_config"} <= methods
    assert not methods & {"_compile", "_fit", "input_settings", "steps_per_epoch", "input_pipeline"}


def test_the_input_limit_is_applied_at_the_models_door_only():
    """A text is cut to the input limit where it enters the model (zoo.classifier: `preprocess`, and `readable` for
    what a vocabulary adapts on), nowhere else: not in the loaders, not in the Python API."""
    callers = set()
    for path in project_modules().values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) == "cut_to_input_limit"
                                               or getattr(node.func, "id", None) == "cut_to_input_limit"):
                callers.add(str(path.relative_to(ROOT)))
    assert callers == {"zoo/classifier.py"}


# A measured figure in prose: an accuracy (0.9741), a duration (162 s, 14.1 ms), a speed-up, or the words that
# report one. Settings and constants (lr 3e-4, 256 positions, 10 %) are not matched.
MEASUREMENT = re.compile(r"\b0\.\d{3,4}\b|\b\d+(\.\d+)? ?(s|ms|seconds|minutes)\b|\b\d+(\.\d+)?x (faster|slower)"
                         r"|\b\d+(\.\d+)? ?% (faster|slower)|\bmeasured\b|\bprofiled\b", re.I)


def prose_lines(path):
    """(line, text) of every comment and docstring line of a Python file."""
    source = path.read_text()
    found = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                found += [(node.body[0].lineno + i, line) for i, line in enumerate(docstring.splitlines())]
    return found


def test_measurements_live_in_docs_not_in_the_library_code():
    """Comments and docstrings of zoo/ and recipes/ say what and why; the numbers a choice rests on are in
    docs/measurements.md (linked as docs/measurements.md#anchor), and every such link has its section there."""
    anchors = set(re.findall(r"^#+ (\S+)$", (ROOT / "docs" / "measurements.md").read_text(), re.M))
    measured, dangling = [], []
    for package in ("zoo", "recipes"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in prose_lines(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                measured += [f"{where}: {text.strip()}"] if MEASUREMENT.search(text) else []
                dangling += [f"{where}: #{a}" for a in re.findall(r"docs/measurements\.md#([\w-]+)", text)
                             if a not in anchors]
    assert measured == [] and dangling == []


def test_the_measurement_guard_sees_a_measurement(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Trains fast."""\n# lr 3e-4 on 256 positions, warm-up 10 %.\nX = 1  # 0.9741 in 162 s\n'
                      'def f():\n    """Ran 9 % faster (measured)."""\n')
    assert [line for line, text in prose_lines(sample) if MEASUREMENT.search(text)] == [3, 5]
